//! A vectorisable `tanh` for `f32`.
//!
//! `f32::tanh` is a scalar libm call (about 16 ns per element here, 6x PyTorch's vectorised
//! one). [`tanh`] computes `(1 - e) / (1 + e)` with `e = exp(-2|x|)`, where the exponential is
//! `2^k * p(f)` (`k` the nearest integer, `p` a degree-6 polynomial for `2^f` on `[-1/2, 1/2]`
//! with relative error 1.0e-7, fitted on Chebyshev nodes), and `x - x^3 / 3` below `|x| < 0.02`
//! where the quotient loses relative accuracy. Everything is branch-free arithmetic, so the
//! compiler vectorises loops over slices.
//!
//! Error against the exact `tanh` (tested over `[-12, 12]`): at most 2e-7 absolute and 1e-5
//! relative; libm's `tanhf` is at most 6e-8 absolute. The result never leaves `[-1, 1]`.

/// Coefficients of `2^f` on `[-1/2, 1/2]`, lowest degree first (relative error 1.0e-7 in `f32`,
/// Chebyshev fit).
const EXP2_POLY: [f32; 7] = [
    1.0,
    std::f32::consts::LN_2,
    0.240_226_5,
    0.055_503_27,
    0.009_618_025,
    0.001_340_043_3,
    0.000_154_697_32,
];

/// `1.5 * 2^23`: adding it to a float in `[-2^22, 2^22]` leaves the value rounded to an integer
/// in the low mantissa bits (a vectorisable `round`, unlike a saturating `as` cast).
const ROUND: f32 = 12_582_912.0;

/// Below this magnitude `tanh(x) = x - x^3 / 3` to within 4e-10.
const SMALL: f32 = 0.02;

/// `tanh(x)`, vectorisable; see the module documentation for the error bound.
#[inline(always)]
pub fn tanh(x: f32) -> f32 {
    let a = x.abs();
    // exp(-2a) = 2^z with z = -2a log2(e), clamped where exp underflows (tanh is 1 there); a
    // comparison, not `max`, so that NaN propagates.
    let z = a * (-2.0 * std::f32::consts::LOG2_E);
    let z = if z < -126.0 { -126.0 } else { z };
    let shifted = z + ROUND;
    let k = shifted - ROUND;
    let f = z - k;
    let k_int = shifted.to_bits() as i32 - ROUND.to_bits() as i32;
    let mut p = EXP2_POLY[6];
    for &c in EXP2_POLY[..6].iter().rev() {
        p = p * f + c;
    }
    let e = p * f32::from_bits(((k_int + 127) as u32) << 23);
    let large = (1.0 - e) / (1.0 + e);
    let small = a - a * a * a * (1.0 / 3.0);
    let magnitude = if a < SMALL { small } else { large };
    magnitude.copysign(x)
}

/// Applies [`tanh`] to every element.
pub fn tanh_in_place(values: &mut [f32]) {
    for v in values {
        *v = tanh(*v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tanh_is_within_the_stated_error_of_the_exact_value() {
        let (mut worst_abs, mut worst_rel) = (0f64, 0f64);
        let n = 2_000_001;
        for i in 0..n {
            let x = -12.0 + 24.0 * i as f64 / (n - 1) as f64;
            let x32 = x as f32;
            let exact = (x32 as f64).tanh();
            let got = tanh(x32) as f64;
            assert!(got.abs() <= 1.0, "tanh({x32}) = {got}");
            worst_abs = worst_abs.max((got - exact).abs());
            if exact != 0.0 {
                worst_rel = worst_rel.max(((got - exact) / exact).abs());
            }
        }
        assert!(worst_abs < 2e-7, "absolute error {worst_abs}");
        assert!(worst_rel < 1e-5, "relative error {worst_rel}");
    }

    #[test]
    fn tanh_handles_tiny_huge_and_special_values() {
        for x in [
            1e-30f32,
            -1e-30,
            1e-8,
            -3e-3,
            0.0199,
            0.02,
            50.0,
            -50.0,
            f32::MAX,
        ] {
            let exact = (x as f64).tanh();
            assert!(
                ((tanh(x) as f64) - exact).abs() <= 2e-7 + 1e-5 * exact.abs(),
                "{x}"
            );
        }
        assert_eq!(tanh(0.0), 0.0);
        assert_eq!(tanh(f32::INFINITY), 1.0);
        assert_eq!(tanh(f32::NEG_INFINITY), -1.0);
        assert!(tanh(f32::NAN).is_nan());
    }
}
