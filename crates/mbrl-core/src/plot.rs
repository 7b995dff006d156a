//! The font of every figure the workspace draws (feature `plot`): DejaVu Sans (Bitstream Vera
//! license, `assets/DejaVuSans-LICENSE`), embedded so plots render text on machines without
//! system fonts. The command line's `plot` and the results examples of the algorithm crates
//! call [`register_font`] before drawing with plotters.

use crate::{Error, Result};

/// The embedded DejaVu Sans.
pub const FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

/// Registers the embedded font with plotters as `sans-serif` (normal style), the family the
/// figures name.
pub fn register_font() -> Result<()> {
    plotters::style::register_font("sans-serif", plotters::style::FontStyle::Normal, FONT)
        .map_err(|_| Error::InvalidArgument("the embedded font could not be loaded".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_font_registers() {
        register_font().unwrap();
    }
}
