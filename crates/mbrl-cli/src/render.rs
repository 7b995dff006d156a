//! `mbrl-cli render`: records robot episodes (a trained policy's or random actions) from the
//! simulation state of the real environment and writes them as an animated GIF or a PNG
//! strip of frames.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use mbrl_envs::render::{render_gif, render_rgb, RenderOptions};
use mbrl_envs::robots::{RobotEnv, SimState};
use plotters::backend::{BitMapBackend, DrawingBackend};

use crate::UsageError;

/// Output image format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ImageFormat {
    /// Animated, looping GIF.
    Gif,
    /// One PNG with the frames side by side, in rows of up to [`PNG_COLUMNS`].
    Png,
}

/// Frames per row of a PNG strip.
pub const PNG_COLUMNS: usize = 8;
/// Frames a PNG strip shows when no stride is given (the stride is chosen to fit).
pub const PNG_DEFAULT_FRAMES: usize = 16;

/// How the frames are written.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    /// File to write.
    pub path: PathBuf,
    /// Image format.
    pub format: ImageFormat,
    /// Draw every `stride`-th frame; `None`: every frame of a GIF, about
    /// [`PNG_DEFAULT_FRAMES`] for a PNG.
    pub stride: Option<usize>,
}

/// The format of `format` if given, else guessed from `path`'s extension (`.png` gives PNG,
/// anything else GIF); a PNG must be written to a `.png` file.
pub fn resolve_format(path: &Path, format: Option<ImageFormat>) -> Result<ImageFormat> {
    let is_png = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("png"));
    let format = format.unwrap_or(if is_png {
        ImageFormat::Png
    } else {
        ImageFormat::Gif
    });
    if format == ImageFormat::Png && !is_png {
        return Err(UsageError(format!(
            "--format png writes a .png file; got --out {}",
            path.display()
        ))
        .into());
    }
    Ok(format)
}

/// The simulation states of one episode: after `reset(seed)`, then after every step, until
/// the episode terminates or `max_steps` steps. `act` maps an observation to an action.
/// Returns the states and the episode's return.
pub fn record_episode(
    env: &mut dyn RobotEnv,
    seed: u64,
    max_steps: usize,
    mut act: impl FnMut(&candle_core::Tensor) -> Result<candle_core::Tensor>,
) -> Result<(Vec<SimState>, f64)> {
    let (mut obs, _) = env.reset(Some(seed))?;
    let mut frames = vec![env.sim_state().clone()];
    let mut total = 0.0;
    for _ in 0..max_steps {
        let step = env.step(&act(&obs)?)?;
        frames.push(env.sim_state().clone());
        total += step.reward;
        if step.terminated {
            break;
        }
        obs = step.obs;
    }
    Ok((frames, total))
}

/// Draws `frames` with the robot's view and writes them to `output`.
pub fn write(frames: &[SimState], env: &dyn RobotEnv, output: &Output) -> Result<()> {
    if output.stride == Some(0) {
        return Err(UsageError("--stride must be at least 1".into()).into());
    }
    let stride = output.stride.unwrap_or(match output.format {
        ImageFormat::Gif => 1,
        ImageFormat::Png => frames.len().div_ceil(PNG_DEFAULT_FRAMES).max(1),
    });
    let options = RenderOptions {
        view: env.default_view(),
        stride,
        ..RenderOptions::default()
    };
    let path = &output.path;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    match output.format {
        ImageFormat::Gif => std::fs::write(path, render_gif(frames, &options)?)
            .with_context(|| format!("writing {}", path.display())),
        ImageFormat::Png => write_png_strip(&render_rgb(frames, &options)?, path),
    }
}

/// Tiles RGB frames into rows of up to [`PNG_COLUMNS`] and saves them as one PNG.
fn write_png_strip(frames: &[mbrl_envs::render::RgbFrame], path: &Path) -> Result<()> {
    let Some(first) = frames.first() else {
        anyhow::bail!("no frames to write");
    };
    let (w, h) = (first.width as usize, first.height as usize);
    let columns = frames.len().min(PNG_COLUMNS);
    let rows = frames.len().div_ceil(columns);
    let (width, height) = (w * columns, h * rows);
    let mut pixels = vec![255u8; width * height * 3];
    for (i, frame) in frames.iter().enumerate() {
        let (x0, y0) = ((i % columns) * w, (i / columns) * h);
        for y in 0..h {
            let src = &frame.pixels[y * w * 3..(y + 1) * w * 3];
            let start = ((y0 + y) * width + x0) * 3;
            pixels[start..start + w * 3].copy_from_slice(src);
        }
    }
    let png = |e: &dyn std::fmt::Display| anyhow::anyhow!("writing {}: {e}", path.display());
    let mut backend = BitMapBackend::new(path, (width as u32, height as u32));
    backend
        .blit_bitmap((0, 0), (width as u32, height as u32), &pixels)
        .map_err(|e| png(&e))?;
    backend.present().map_err(|e| png(&e))?;
    Ok(())
}
