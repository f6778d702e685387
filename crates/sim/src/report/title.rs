//! Plot titles that fit the plot's width. An SVG does not know the viewer's fonts, so
//! widths are estimated from DejaVu Sans (the widest common sans-serif; Arial and
//! Helvetica are narrower); each line of the title (`\n` separates them) is shrunk to
//! fit, and a line that would need a font below the minimum is wrapped at spaces.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// plotters writes `font-size` as its size divided by 1.24.
const PX_PER_SIZE: f64 = 1.0 / 1.24;

/// Smallest size a line is shrunk to before it is wrapped instead.
const MIN_SIZE: f64 = 14.0;

/// Advance width of `c` in em, DejaVu Sans, rounded up a little.
fn em(c: char) -> f64 {
    match c {
        'i' | 'l' | 'j' | '.' | ',' | ';' | ':' | '\'' | '|' | '!' | 'I' => 0.32,
        ' ' | 'f' | 't' | 'r' | '(' | ')' | '[' | ']' | '-' | '/' | '\\' => 0.42,
        'm' | 'M' | 'W' | '%' | '@' => 1.0,
        'w' | '&' => 0.84,
        'A'..='Z' => 0.78,
        _ => 0.65,
    }
}

/// Estimated width of `text` in pixels at plotters size `size`.
pub(crate) fn width_px(text: &str, size: f64) -> f64 {
    text.chars().map(em).sum::<f64>() * size * PX_PER_SIZE
}

/// The title's lines and their sizes so that each is at most `width` pixels wide:
/// the first line at `first`, the others at `rest`, shrunk (down to [`MIN_SIZE`]) or
/// wrapped at spaces when too wide.
pub(crate) fn fit(title: &str, width: f64, first: f64, rest: f64) -> Vec<(String, f64)> {
    let mut out = Vec::new();
    for (i, line) in title.lines().map(str::trim).enumerate() {
        if line.is_empty() {
            continue;
        }
        let size = if i == 0 { first } else { rest };
        let w = width_px(line, size);
        if w <= width {
            out.push((line.to_string(), size));
        } else if size * width / w >= MIN_SIZE.min(size) {
            out.push((line.to_string(), shrink(line, size, width)));
        } else {
            // Greedy wrap at `size`; a piece still too wide (one long word) shrinks.
            let mut piece = String::new();
            for word in line.split(' ').filter(|w| !w.is_empty()) {
                let longer = if piece.is_empty() {
                    word.to_string()
                } else {
                    format!("{piece} {word}")
                };
                if width_px(&longer, size) <= width || piece.is_empty() {
                    piece = longer;
                } else {
                    out.push((piece.clone(), shrink(&piece, size, width)));
                    piece = word.to_string();
                }
            }
            out.push((piece.clone(), shrink(&piece, size, width)));
        }
    }
    out
}

/// `size`, or the largest size (to a tenth) at which `text` is at most `width` wide.
fn shrink(text: &str, size: f64, width: f64) -> f64 {
    let w = width_px(text, size);
    if w <= width {
        size
    } else {
        (size * width / w * 10.0).floor() / 10.0
    }
}

/// Draws `title` centred at the top of `root` (see [`fit`], with 15 pixels of margin
/// each side) and returns the area below it.
///
/// # Errors
/// A message if drawing fails.
pub(crate) fn draw<'a>(
    root: &DrawingArea<SVGBackend<'a>, Shift>,
    title: &str,
    first: f64,
    rest: f64,
) -> Result<DrawingArea<SVGBackend<'a>, Shift>, String> {
    let (w, _) = root.dim_in_pixel();
    let lines = fit(title, f64::from(w) - 30.0, first, rest);
    let mut y: f64 = 12.0;
    for (text, size) in &lines {
        let style = ("sans-serif", *size)
            .into_font()
            .color(&BLACK)
            .pos(Pos::new(HPos::Center, VPos::Top));
        root.draw_text(text, &style, ((w / 2) as i32, y.round() as i32))
            .map_err(|e| e.to_string())?;
        y += size * PX_PER_SIZE * 1.3;
    }
    let top = if lines.is_empty() { 0 } else { y.ceil() as u32 };
    Ok(root.split_vertically(top).1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const README_TITLE: &str = "GPU allocation vs arrived demand (10 seeds; openb_node_list_gpu_node.csv + openb_pod_list_default.csv)";

    #[test]
    fn widths_follow_dejavu_sans() {
        // DejaVu Sans: "GPU" is 0.775 + 0.603 + 0.732 = 2.11 em; estimated 2.34 em.
        assert!((width_px("GPU", 1.24) - 2.34).abs() < 1e-9);
        // The README's title at 22 (17.7 px) is about 1100 px wide: too wide for 870.
        let w = width_px(README_TITLE, 22.0);
        assert!((1000.0..1200.0).contains(&w), "{w}");
    }

    #[test]
    fn a_short_title_keeps_its_size() {
        assert_eq!(
            fit("GPU allocation (3 seeds)", 870.0, 22.0, 16.0),
            [("GPU allocation (3 seeds)".to_string(), 22.0)]
        );
    }

    #[test]
    fn a_little_too_long_line_shrinks_to_fit() {
        let lines = fit(README_TITLE, 870.0, 22.0, 16.0);
        assert_eq!(lines.len(), 1);
        assert!(lines[0].1 < 22.0 && lines[0].1 >= MIN_SIZE, "{lines:?}");
        assert!(width_px(&lines[0].0, lines[0].1) <= 870.0);
    }

    #[test]
    fn a_much_too_long_line_wraps_at_spaces_and_every_piece_fits() {
        let long = format!("{README_TITLE} and {README_TITLE}");
        let lines = fit(&long, 870.0, 22.0, 16.0);
        assert!(lines.len() >= 2, "{lines:?}");
        for (t, s) in &lines {
            assert!(width_px(t, *s) <= 870.0, "{t:?} at {s}");
        }
        let words: Vec<&str> = lines.iter().flat_map(|(t, _)| t.split(' ')).collect();
        assert_eq!(words, long.split(' ').collect::<Vec<_>>(), "no word lost");
        // One word wider than the plot shrinks below the minimum rather than overflow.
        let word = "x".repeat(300);
        let lines = fit(&word, 870.0, 22.0, 16.0);
        assert_eq!(lines.len(), 1);
        assert!(width_px(&lines[0].0, lines[0].1) <= 870.0);
    }

    #[test]
    fn later_lines_use_the_smaller_size() {
        let lines = fit("Heading\n\nsubtitle", 870.0, 22.0, 16.0);
        assert_eq!(
            lines,
            [
                ("Heading".to_string(), 22.0),
                ("subtitle".to_string(), 16.0)
            ]
        );
    }
}
