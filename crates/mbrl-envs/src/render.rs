//! Animated GIFs of robot episodes: each frame draws the collision shapes of one
//! [`SimState`], projected orthographically (a capsule projects to a "stadium", its segment's
//! projection thickened by the radius, so the drawing is exact).
//!
//! Planar robots are seen from the side (the x-z plane); the ant and the arm from the top
//! (x-y) and the side, stacked. The camera follows the robot horizontally, and the ground
//! carries tick marks every half metre so forward motion is visible.
//!
//! ```no_run
//! use mbrl_core::env::{vector, Env};
//! use mbrl_envs::render::{render_gif, RenderOptions};
//! use mbrl_envs::robots::{make_robot, RobotEnv};
//!
//! let mut env = make_robot("half-cheetah", None)?;
//! env.reset(Some(0))?;
//! let mut frames = vec![env.sim_state().clone()];
//! for _ in 0..100 {
//!     env.step(&vector(&[0.5, -0.5, 0.5, -0.5, 0.5, -0.5])?)?;
//!     frames.push(env.sim_state().clone());
//! }
//! let options = RenderOptions { view: env.default_view(), ..RenderOptions::default() };
//! std::fs::write("cheetah.gif", render_gif(&frames, &options)?)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::robots::SimState;
use crate::{Error, Result};

/// Which projections a frame shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum View {
    /// The x-z plane, seen along +y (planar robots).
    #[default]
    Side,
    /// The x-y plane seen from above, over the side view.
    TopAndSide,
}

/// How an episode is drawn.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderOptions {
    /// Projections. Default [`View::Side`].
    pub view: View,
    /// Width of one view in pixels. Default 320.
    pub width: u16,
    /// Height of one view in pixels. Default 160.
    pub height: u16,
    /// Scale. Default 80 pixels per metre.
    pub pixels_per_meter: f32,
    /// Height of the ground line above the bottom of a side view, in pixels. Default 24.
    pub ground_margin: u16,
    /// Delay between frames in hundredths of a second. Default 5 (the half-cheetah's
    /// 0.05 s control step).
    pub frame_delay_cs: u16,
    /// Draw every `stride`-th state only (keeps long episodes small). Default 1.
    pub stride: usize,
}

impl Default for RenderOptions {
    fn default() -> Self {
        Self {
            view: View::Side,
            width: 320,
            height: 160,
            pixels_per_meter: 80.0,
            ground_margin: 24,
            frame_delay_cs: 5,
            stride: 1,
        }
    }
}

/// Palette indices.
const SKY: u8 = 0;
const GROUND: u8 = 1;
const TICK: u8 = 2;
const BODY: u8 = 3;
const OUTLINE: u8 = 4;
const SEPARATOR: u8 = 5;
/// RGB triples of the palette, in index order.
const PALETTE: [u8; 18] = [
    245, 247, 250, // sky
    190, 205, 185, // ground
    120, 135, 115, // ground ticks
    204, 153, 102, // body
    110, 70, 40, // body outline
    60, 60, 60, // view separator
];

/// One capsule projected to 2D picture coordinates (metres): a segment and a radius.
#[derive(Debug, Clone, Copy)]
struct Stadium {
    a: [f32; 2],
    b: [f32; 2],
    radius: f32,
}

/// Renders `frames` as an animated, looping GIF and returns its bytes.
///
/// Errors when there is no frame, when a view is smaller than 8x8 pixels, when the scale
/// or stride is not positive, or when the image would exceed the GIF size limit.
pub fn render_gif(frames: &[SimState], options: &RenderOptions) -> Result<Vec<u8>> {
    let height = frame_height(frames, options)?;
    let width = options.width;
    let invalid = |msg: String| Error::Core(mbrl_core::Error::InvalidArgument(msg));
    let mut bytes = Vec::new();
    {
        let encode = |e: gif::EncodingError| invalid(format!("render_gif: GIF encoding: {e}"));
        let mut encoder = gif::Encoder::new(&mut bytes, width, height, &PALETTE).map_err(encode)?;
        encoder.set_repeat(gif::Repeat::Infinite).map_err(encode)?;
        for state in frames.iter().step_by(options.stride) {
            let pixels = draw_frame(state, options, height);
            let mut frame = gif::Frame::from_indexed_pixels(width, height, pixels, None);
            frame.delay = options.frame_delay_cs;
            encoder.write_frame(&frame).map_err(encode)?;
        }
    }
    Ok(bytes)
}

/// One drawn frame as 8-bit RGB, row-major (3 bytes per pixel).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RgbFrame {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// `width * height * 3` bytes.
    pub pixels: Vec<u8>,
}

/// Draws every `stride`-th state as an RGB image (the frames [`render_gif`] encodes), for
/// other image formats such as a PNG strip. Errors as [`render_gif`].
pub fn render_rgb(frames: &[SimState], options: &RenderOptions) -> Result<Vec<RgbFrame>> {
    let height = frame_height(frames, options)?;
    Ok(frames
        .iter()
        .step_by(options.stride)
        .map(|state| RgbFrame {
            width: u32::from(options.width),
            height: u32::from(height),
            pixels: draw_frame(state, options, height)
                .into_iter()
                .flat_map(|i| {
                    let i = usize::from(i) * 3;
                    [PALETTE[i], PALETTE[i + 1], PALETTE[i + 2]]
                })
                .collect(),
        })
        .collect())
}

/// Checks the frames and options; the height of a frame with all its views.
fn frame_height(frames: &[SimState], options: &RenderOptions) -> Result<u16> {
    let invalid = |msg: String| Error::Core(mbrl_core::Error::InvalidArgument(msg));
    if frames.is_empty() {
        return Err(invalid("render_gif: no frames to draw".into()));
    }
    if options.width < 8 || options.height < 8 {
        return Err(invalid(format!(
            "render_gif: views must be at least 8x8 pixels, got {}x{}",
            options.width, options.height
        )));
    }
    if !(options.pixels_per_meter.is_finite() && options.pixels_per_meter > 0.0) {
        return Err(invalid(format!(
            "render_gif: pixels_per_meter must be positive, got {}",
            options.pixels_per_meter
        )));
    }
    if options.stride == 0 {
        return Err(invalid("render_gif: stride must be at least 1".into()));
    }
    let views = match options.view {
        View::Side => 1,
        View::TopAndSide => 2,
    };
    u16::try_from(u32::from(options.height) * views + views - 1).map_err(|_| {
        invalid(format!(
            "render_gif: {views} views of height {} exceed the GIF limit of 65535 pixels",
            options.height
        ))
    })
}

/// Draws one state: the side view at the bottom, the top view (if any) above it.
fn draw_frame(state: &SimState, options: &RenderOptions, height: u16) -> Vec<u8> {
    let (w, h) = (usize::from(options.width), usize::from(options.height));
    let mut pixels = vec![SKY; w * usize::from(height)];
    let capsules = capsules(state);
    let n = capsules.len().max(1) as f32;
    let center_x = capsules.iter().map(|(a, b, _)| a[0] + b[0]).sum::<f32>() / (2.0 * n);
    let center_y = capsules.iter().map(|(a, b, _)| a[1] + b[1]).sum::<f32>() / (2.0 * n);
    let scale = options.pixels_per_meter;

    // Side view: x to the right, z up, ground `ground_margin` pixels above the bottom.
    let side_top = usize::from(height) - h;
    let ground_row = h.saturating_sub(usize::from(options.ground_margin));
    let side: Vec<Stadium> = capsules
        .iter()
        .map(|(a, b, r)| Stadium {
            a: [a[0], a[2]],
            b: [b[0], b[2]],
            radius: *r,
        })
        .collect();
    let side_view = View2 {
        left: center_x - w as f32 / (2.0 * scale),
        bottom: -((h - ground_row) as f32) / scale,
        scale,
        width: w,
        height: h,
    };
    let rows = &mut pixels[side_top * w..];
    if has_flat_ground(state) {
        draw_ground(rows, &side_view, ground_row);
    }
    for polygon in terrain_polygons(state) {
        draw_polygon(rows, &side_view, &polygon);
    }
    draw_stadiums(rows, &side_view, &side);

    if options.view == View::TopAndSide {
        // Top view: x to the right, y up, centred on the robot, with a 0.5 m grid.
        let top: Vec<Stadium> = capsules
            .iter()
            .map(|(a, b, r)| Stadium {
                a: [a[0], a[1]],
                b: [b[0], b[1]],
                radius: *r,
            })
            .collect();
        let top_view = View2 {
            left: center_x - w as f32 / (2.0 * scale),
            bottom: center_y - h as f32 / (2.0 * scale),
            scale,
            width: w,
            height: h,
        };
        let rows = &mut pixels[..h * w];
        draw_grid(rows, &top_view);
        draw_stadiums(rows, &top_view, &top);
        pixels[h * w..(h + 1) * w].fill(SEPARATOR);
    }
    pixels
}

/// World end points and radius of every capsule and ball collider; a ball is drawn as a
/// capsule of zero length.
fn capsules(state: &SimState) -> Vec<([f32; 3], [f32; 3], f32)> {
    state
        .colliders()
        .iter()
        .filter_map(|(_, c)| {
            let pose = c.position();
            if let Some(ball) = c.shape().as_ball() {
                let center: [f32; 3] = pose.translation.into();
                return Some((center, center, ball.radius));
            }
            let capsule = c.shape().as_capsule()?;
            Some((
                pose.transform_point(capsule.segment.a).into(),
                pose.transform_point(capsule.segment.b).into(),
                capsule.radius,
            ))
        })
        .collect()
}

/// Whether the flat ground plane `z = 0` is present (the pier replaces it by water).
fn has_flat_ground(state: &SimState) -> bool {
    state.colliders().iter().any(|(_, c)| {
        c.is_enabled() && c.shape().as_halfspace().is_some() && c.translation().z.abs() < 1e-6
    })
}

/// Side-view (x, z) outlines of the enabled cuboid and convex colliders (terrain such as the
/// half-cheetah's hill and pier), as convex polygons.
fn terrain_polygons(state: &SimState) -> Vec<Vec<[f32; 2]>> {
    state
        .colliders()
        .iter()
        .filter(|(_, c)| c.is_enabled())
        .filter_map(|(_, c)| {
            let shape = c.shape();
            let local: Vec<rapier3d::prelude::Vector> = if let Some(cuboid) = shape.as_cuboid() {
                let e = cuboid.half_extents;
                (0..8)
                    .map(|i| {
                        let sign = |bit: usize| if i & bit == 0 { -1.0 } else { 1.0 };
                        rapier3d::prelude::Vector::new(sign(1) * e.x, sign(2) * e.y, sign(4) * e.z)
                    })
                    .collect()
            } else {
                shape.as_convex_polyhedron()?.points().to_vec()
            };
            let pose = c.position();
            let points: Vec<[f32; 2]> = local
                .into_iter()
                .map(|p| {
                    let w = pose.transform_point(p);
                    [w.x, w.z]
                })
                .collect();
            Some(convex_hull(points))
        })
        .collect()
}

/// Counter-clockwise convex hull (Andrew's monotone chain).
fn convex_hull(mut points: Vec<[f32; 2]>) -> Vec<[f32; 2]> {
    points.sort_by(|a, b| a[0].total_cmp(&b[0]).then(a[1].total_cmp(&b[1])));
    points.dedup();
    if points.len() < 3 {
        return points;
    }
    let cross = |o: [f32; 2], a: [f32; 2], b: [f32; 2]| {
        (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])
    };
    let mut hull: Vec<[f32; 2]> = Vec::with_capacity(points.len() * 2);
    for pass in 0..2 {
        let start = hull.len();
        let ordered: Box<dyn Iterator<Item = &[f32; 2]>> = if pass == 0 {
            Box::new(points.iter())
        } else {
            Box::new(points.iter().rev())
        };
        for &p in ordered {
            while hull.len() >= start + 2
                && cross(hull[hull.len() - 2], hull[hull.len() - 1], p) <= 0.0
            {
                hull.pop();
            }
            hull.push(p);
        }
        hull.pop();
    }
    hull
}

/// Fills a counter-clockwise convex polygon in the ground colour, with a one-pixel outline.
fn draw_polygon(rows: &mut [u8], view: &View2, polygon: &[[f32; 2]]) {
    if polygon.len() < 3 {
        return;
    }
    let px = 1.0 / view.scale;
    let (mut x0, mut x1, mut y0, mut y1) = (f32::MAX, f32::MIN, f32::MAX, f32::MIN);
    for p in polygon {
        (x0, x1, y0, y1) = (x0.min(p[0]), x1.max(p[0]), y0.min(p[1]), y1.max(p[1]));
    }
    let col = |x: f32| {
        ((x - view.left) * view.scale)
            .floor()
            .clamp(0.0, view.width as f32) as usize
    };
    let row = |y: f32| {
        (view.height as f32 - (y - view.bottom) * view.scale)
            .floor()
            .clamp(0.0, view.height as f32) as usize
    };
    for r in row(y1)..(row(y0) + 1).min(view.height) {
        for c in col(x0)..(col(x1) + 1).min(view.width) {
            let p = view.point(c, r);
            // Signed distance inside each edge (positive inside a counter-clockwise polygon).
            let inside = (0..polygon.len())
                .map(|i| {
                    let (a, b) = (polygon[i], polygon[(i + 1) % polygon.len()]);
                    let (ex, ey) = (b[0] - a[0], b[1] - a[1]);
                    let len = (ex * ex + ey * ey).sqrt().max(f32::EPSILON);
                    (ex * (p[1] - a[1]) - ey * (p[0] - a[0])) / len
                })
                .fold(f32::MAX, f32::min);
            if inside >= 0.0 {
                rows[r * view.width + c] = if inside < px { TICK } else { GROUND };
            }
        }
    }
}

/// A 2D window onto a projection plane: picture column `i` is at `left + (i + 0.5) / scale`.
struct View2 {
    left: f32,
    bottom: f32,
    scale: f32,
    width: usize,
    height: usize,
}

impl View2 {
    fn point(&self, col: usize, row: usize) -> [f32; 2] {
        [
            self.left + (col as f32 + 0.5) / self.scale,
            self.bottom + (self.height - row) as f32 / self.scale - 0.5 / self.scale,
        ]
    }
}

/// Fills the ground below `ground_row` and marks every half metre of x.
fn draw_ground(rows: &mut [u8], view: &View2, ground_row: usize) {
    for row in ground_row..view.height {
        rows[row * view.width..(row + 1) * view.width].fill(GROUND);
    }
    let tick_rows = ground_row..(ground_row + 6).min(view.height);
    for col in 0..view.width {
        let x = view.point(col, 0)[0];
        if (x * 2.0).rem_euclid(1.0) < 1.5 / view.scale * 2.0 {
            for row in tick_rows.clone() {
                rows[row * view.width + col] = TICK;
            }
        }
    }
}

/// Grid lines every half metre in both directions (top view).
fn draw_grid(rows: &mut [u8], view: &View2) {
    let line = 1.0 / view.scale * 2.0;
    for row in 0..view.height {
        for col in 0..view.width {
            let [x, y] = view.point(col, row);
            if (x * 2.0).rem_euclid(1.0) < line || (y * 2.0).rem_euclid(1.0) < line {
                rows[row * view.width + col] = GROUND;
            }
        }
    }
}

/// Fills each stadium, with a one-pixel outline.
fn draw_stadiums(rows: &mut [u8], view: &View2, stadiums: &[Stadium]) {
    let px = 1.0 / view.scale;
    for s in stadiums {
        let r = s.radius.max(px);
        let to_col = |x: f32| ((x - view.left) * view.scale).floor();
        let to_row = |y: f32| (view.height as f32 - (y - view.bottom) * view.scale).floor();
        let (x0, x1) = (s.a[0].min(s.b[0]) - r, s.a[0].max(s.b[0]) + r);
        let (y0, y1) = (s.a[1].min(s.b[1]) - r, s.a[1].max(s.b[1]) + r);
        let cols =
            to_col(x0).max(0.0) as usize..(to_col(x1) + 1.0).clamp(0.0, view.width as f32) as usize;
        let row_range = to_row(y1).max(0.0) as usize
            ..(to_row(y0) + 1.0).clamp(0.0, view.height as f32) as usize;
        for row in row_range {
            for col in cols.clone() {
                let d = segment_distance(view.point(col, row), s.a, s.b);
                if d <= r {
                    rows[row * view.width + col] = if d > r - px { OUTLINE } else { BODY };
                }
            }
        }
    }
}

/// Distance from `p` to the segment `a`-`b`.
fn segment_distance(p: [f32; 2], a: [f32; 2], b: [f32; 2]) -> f32 {
    let ab = [b[0] - a[0], b[1] - a[1]];
    let ap = [p[0] - a[0], p[1] - a[1]];
    let len2 = ab[0] * ab[0] + ab[1] * ab[1];
    let t = if len2 > 0.0 {
        ((ap[0] * ab[0] + ap[1] * ab[1]) / len2).clamp(0.0, 1.0)
    } else {
        0.0
    };
    let d = [ap[0] - t * ab[0], ap[1] - t * ab[1]];
    (d[0] * d[0] + d[1] * d[1]).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn convex_hull_keeps_the_outer_points_counter_clockwise() {
        let square = [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]];
        let mut points = square.to_vec();
        points.extend([[0.5, 0.5], [0.2, 0.7], [1.0, 0.0]]);
        let hull = convex_hull(points);
        assert_eq!(hull.len(), 4, "{hull:?}");
        assert!(square.iter().all(|p| hull.contains(p)));
        let area2: f32 = (0..4)
            .map(|i| {
                let (a, b) = (hull[i], hull[(i + 1) % 4]);
                a[0] * b[1] - b[0] * a[1]
            })
            .sum();
        assert!(
            (area2 - 2.0).abs() < 1e-6,
            "counter-clockwise, area 1: {area2}"
        );
    }

    #[test]
    fn segment_distance_is_euclidean_to_the_closest_point() {
        assert!((segment_distance([0.0, 1.0], [-1.0, 0.0], [1.0, 0.0]) - 1.0).abs() < 1e-6);
        assert!((segment_distance([3.0, 0.0], [-1.0, 0.0], [1.0, 0.0]) - 2.0).abs() < 1e-6);
        assert!((segment_distance([1.0, 1.0], [0.0, 0.0], [0.0, 0.0]) - 2f32.sqrt()).abs() < 1e-6);
    }
}
