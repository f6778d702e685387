//! mlmod: an Lmod-compatible environment-modules engine.
//!
//! The library evaluates Lua modulefiles (Lmod's dialect) and computes environment
//! changes; it never prints and knows no shell syntax beyond the [`shell`] renderers
//! the binary uses. State lives in the environment ([`env::STATE_VAR`]), so every call
//! is stateless.

#![warn(missing_docs)]

pub mod collection;
pub mod commands;
pub mod engine;
pub mod env;
pub mod literal;
pub mod shell;
pub mod stack;
pub mod tree;
pub mod version;
