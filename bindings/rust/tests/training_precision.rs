//! Training in bf16 (liblstm 0.8.0, `Workspace::set_training_precision`)
//! through the safe API. The f32 training these runs are compared with is
//! checked against PyTorch by the C and Python tests; here bf16 must stay
//! within 1e-2 of it, normwise (relative L2), and differ from it by more
//! than 1e-4 (it must really run in bf16: 8 significant bits per operand).
mod common;

use common::{model, same_bits, Rng};
use lstm::network::{Head, Loss, Network, NetworkConfig, NetworkInput, Targets};
use lstm::{
    status, Config, Input, InputGrads, Model, OptimOptions, Optimizer, OutputGrads, Precision,
    Workspace,
};

fn relative(a: &[f32], b: &[f32]) -> f64 {
    let (mut diff, mut norm) = (0f64, 0f64);
    for (x, y) in a.iter().zip(b) {
        diff += (f64::from(*x) - f64::from(*y)).powi(2);
        norm += f64::from(*y).powi(2);
    }
    (diff / norm).sqrt()
}

fn bf16_close(a: &[f32], b: &[f32], what: &str) {
    let error = relative(a, b);
    assert!(error > 1e-4 && error < 1e-2, "{}: {}", what, error);
}

const T: usize = 20;
const B: usize = 8;
const I: usize = 16;

/// y, dx and the parameter gradients of one training forward and backward.
fn train_once(m: &mut Model, ws: &mut Workspace, x: &[f32], dy: &[f32]) -> [Vec<f32>; 3] {
    m.zero_grads().unwrap();
    let y = m.forward_train(ws, &Input::new(T, B, x)).unwrap().y;
    let mut dx = vec![0f32; x.len()];
    let grads = OutputGrads {
        dy: Some(dy),
        dh_n: None,
        dc_n: None,
    };
    let out = InputGrads {
        dx: Some(&mut dx),
        dh0: None,
        dc0: None,
    };
    m.backward_into(ws, &grads, out).unwrap();
    [y, dx, m.grads().to_vec()]
}

#[test]
fn bf16_training_is_close_to_f32_and_not_the_same() {
    let mut m = model(&Config::new(I, 32).num_layers(2).proj_size(24), 3);
    let mut rng = Rng::new(1);
    let x = rng.vec(T * B * I);
    let dy = rng.vec(T * B * 24);
    let mut ws = Workspace::new(&m).unwrap();
    assert_eq!(ws.training_precision(), Precision::Fp32);
    let f32_run = train_once(&mut m, &mut ws, &x, &dy);
    ws.set_training_precision(Precision::Bf16).unwrap();
    assert_eq!(ws.training_precision(), Precision::Bf16);
    let bf16_run = train_once(&mut m, &mut ws, &x, &dy);
    for (what, (a, b)) in ["y", "dx", "grads"]
        .iter()
        .zip(bf16_run.iter().zip(f32_run.iter()))
    {
        bf16_close(a, b, what);
    }
    /* inference on the workspace stays f32 */
    let inferred = m.forward(&mut ws, &Input::new(T, B, &x)).unwrap().y;
    assert!(same_bits(&inferred, &f32_run[0]));
    /* and back to f32: its bits again */
    ws.set_training_precision(Precision::Fp32).unwrap();
    let again = train_once(&mut m, &mut ws, &x, &dy);
    for (a, b) in again.iter().zip(f32_run.iter()) {
        assert!(same_bits(a, b));
    }
}

#[test]
fn int8_is_refused_as_the_library_refuses_it() {
    let mut m = model(&Config::new(4, 8), 1);
    let mut ws = Workspace::new(&m).unwrap();
    ws.set_training_precision(Precision::Bf16).unwrap();
    let error = ws.set_training_precision(Precision::Int8).unwrap_err();
    assert_eq!(error.status, status::ARG);
    assert!(error.message.contains("INT8"), "{}", error.message);
    assert_eq!(ws.training_precision(), Precision::Bf16); /* unchanged */
    /* a forward held survives the refusal */
    let x = Rng::new(2).vec(3 * 2 * 4);
    m.forward_train(&mut ws, &Input::new(3, 2, &x)).unwrap();
    assert!(ws.set_training_precision(Precision::Int8).is_err());
    m.backward(&mut ws, &[0.5; 3 * 2 * 8]).unwrap();
}

#[test]
fn a_change_between_forward_and_backward_is_a_state_error() {
    let mut m = model(&Config::new(4, 8), 1);
    let mut ws = Workspace::new(&m).unwrap();
    let x = Rng::new(3).vec(5 * 2 * 4);
    let dy = [0.25f32; 5 * 2 * 8];
    m.forward_train(&mut ws, &Input::new(5, 2, &x)).unwrap();
    ws.set_training_precision(Precision::Fp32).unwrap(); /* the same: nothing dropped */
    m.backward(&mut ws, &dy).unwrap();
    m.forward_train(&mut ws, &Input::new(5, 2, &x)).unwrap();
    ws.set_training_precision(Precision::Bf16).unwrap();
    assert_eq!(m.backward(&mut ws, &dy).unwrap_err().status, status::STATE);
    m.forward_train(&mut ws, &Input::new(5, 2, &x)).unwrap();
    m.backward(&mut ws, &dy).unwrap();
}

/// The adding problem (examples/adding.c) of `t` steps: values and one
/// marker in each half; the target is the sum of the two marked values.
fn adding_batch(rng: &mut Rng, t: usize, b: usize) -> (Vec<f32>, Vec<f32>) {
    let mut x = vec![0f32; t * b * 2];
    let mut target = vec![0f32; b];
    for (s, sum) in target.iter_mut().enumerate() {
        let first = (rng.next_u64() % (t / 2) as u64) as usize;
        let second = t / 2 + (rng.next_u64() % (t - t / 2) as u64) as usize;
        for step in 0..t {
            let at = (step * b + s) * 2;
            x[at] = 0.5 * (rng.uniform() + 1.0);
            if step == first || step == second {
                x[at + 1] = 1.0;
                *sum += x[at];
            }
        }
    }
    (x, target)
}

/// The losses of 60 Adam steps of a network trained in `precision`.
fn adam_losses(precision: Precision) -> Vec<f64> {
    let config = NetworkConfig {
        embedding: None,
        lstm: Config::new(2, 32),
        head: Head::LastStep,
        head_size: 1,
        loss: Loss::Mse,
    };
    let mut net = Network::new(&config).unwrap();
    net.init(11).unwrap();
    let mut ws = net.workspace().unwrap();
    ws.set_training_precision(precision).unwrap();
    let mut opt = Optimizer::new(&OptimOptions::adam().lr(0.01), &mut net).unwrap();
    let mut rng = Rng::new(5);
    let (t, b) = (10, 32);
    let mut losses = Vec::new();
    for _ in 0..60 {
        let (x, target) = adding_batch(&mut rng, t, b);
        opt.zero_grads(&mut net).unwrap();
        net.train_forward(&mut ws, &NetworkInput::features(t, b, &x))
            .unwrap();
        losses.push(
            net.train_backward(&mut ws, &Targets::Values(&target))
                .unwrap(),
        );
        opt.step(&mut net).unwrap();
    }
    /* the network's workspace drops its forward on a change, too */
    let (x, target) = adding_batch(&mut rng, t, b);
    net.train_forward(&mut ws, &NetworkInput::features(t, b, &x))
        .unwrap();
    let other = if precision == Precision::Bf16 {
        Precision::Fp32
    } else {
        Precision::Bf16
    };
    ws.set_training_precision(other).unwrap();
    let error = net
        .train_backward(&mut ws, &Targets::Values(&target))
        .unwrap_err();
    assert_eq!(error.status, status::STATE);
    losses
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

#[test]
fn adam_lowers_a_network_loss_in_bf16_as_in_f32() {
    let f32_losses = adam_losses(Precision::Fp32);
    let bf16_losses = adam_losses(Precision::Bf16);
    assert!(f32_losses != bf16_losses, "bf16 did not run");
    assert!((f32_losses[0] - bf16_losses[0]).abs() < 1e-2 * f32_losses[0]);
    let (end32, end16) = (mean(&f32_losses[50..]), mean(&bf16_losses[50..]));
    assert!(end32 < 0.5 * mean(&f32_losses[..5]), "{:?}", f32_losses);
    assert!(end16 < 0.5 * mean(&bf16_losses[..5]), "{:?}", bf16_losses);
    assert!((end16 - end32).abs() < 0.1 * end32, "{} {}", end32, end16);
}
