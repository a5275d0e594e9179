//! Trains one LSTM layer for a few steps to predict the next value of a
//! sine wave from hidden unit 0, with Adam. Run: `cargo run --example train`.
use lstm::{Config, Input, Model, OptimOptions, Optimizer, Workspace};

fn main() -> lstm::Result<()> {
    let (t, h) = (20, 8);
    let wave: Vec<f32> = (0..=t).map(|k| 0.8 * (k as f32 * 0.5).sin()).collect();
    let mut model = Model::new(&Config::new(1, h))?;
    model.init(42, true)?;
    let mut ws = Workspace::new(&model)?;
    let mut opt = Optimizer::new(&OptimOptions::adam().lr(0.05), &mut model)?;
    for step in 0..10 {
        opt.zero_grads(&mut model)?;
        let y = model
            .forward_train(&mut ws, &Input::new(t, 1, &wave[..t]))?
            .y;
        let err: Vec<f32> = (0..t).map(|k| y[k * h] - wave[k + 1]).collect();
        let mut dy = vec![0.0; t * h]; /* dL/dy: only unit 0 enters the loss */
        for k in 0..t {
            dy[k * h] = 2.0 * err[k] / t as f32;
        }
        model.backward(&mut ws, &dy)?;
        opt.step(&mut model)?;
        println!(
            "step {}: loss {:.5}",
            step,
            err.iter().map(|e| e * e).sum::<f32>() / t as f32
        );
    }
    Ok(())
}
