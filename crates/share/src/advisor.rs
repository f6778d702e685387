//! MIG geometry advisor (next).
