//! Inference in bf16 and int8 (liblstm 0.7.0) and quantized model files
//! through the safe API. Tolerances, normwise relative L2 against f32 on
//! random weights: bf16 < 1%, int8 < 3%.
mod common;

use common::{model, same_bits, temp_path, Rng};
use lstm::network::{Embedding, Head, Loss, Network, NetworkConfig, NetworkInput};
use lstm::{Config, Input, Model, OptimOptions, Optimizer, Precision, State, Workspace};

fn relative(a: &[f32], b: &[f32]) -> f64 {
    let (mut diff, mut norm) = (0f64, 0f64);
    for (x, y) in a.iter().zip(b) {
        diff += (f64::from(*x) - f64::from(*y)).powi(2);
        norm += f64::from(*y).powi(2);
    }
    (diff / norm).sqrt()
}

fn limit(precision: Precision) -> f64 {
    match precision {
        Precision::Bf16 => 0.01,
        _ => 0.03,
    }
}

#[test]
fn inference_in_a_precision_is_close_to_f32() {
    let config = Config::new(24, 40).num_layers(2).bidirectional(true);
    let m = model(&config, 3);
    let (t, b) = (30, 5);
    let x = Rng::new(1).vec(t * b * 24);
    let mut ws = Workspace::new(&m).unwrap();
    let reference = m.forward(&mut ws, &Input::new(t, b, &x)).unwrap();
    for precision in [Precision::Bf16, Precision::Int8] {
        ws.set_precision(precision).unwrap();
        let out = m.forward(&mut ws, &Input::new(t, b, &x)).unwrap();
        let error = relative(&out.y, &reference.y);
        assert!(error < limit(precision), "{:?}: {}", precision, error);
        assert!(!same_bits(&out.y, &reference.y));
    }
    /* back to f32: bit for bit */
    ws.set_precision(Precision::Fp32).unwrap();
    assert_eq!(
        m.forward(&mut ws, &Input::new(t, b, &x)).unwrap(),
        reference
    );
}

#[test]
fn a_state_in_a_precision_equals_the_whole_call() {
    let m = model(&Config::new(8, 16).num_layers(2), 5);
    let (t, b) = (12, 3);
    let x = Rng::new(2).vec(t * b * 8);
    let mut ws = Workspace::new(&m).unwrap();
    ws.set_precision(Precision::Int8).unwrap();
    let whole = m.forward(&mut ws, &Input::new(t, b, &x)).unwrap().y;
    let mut state = State::new(&m, b).unwrap();
    state.set_precision(Precision::Int8).unwrap();
    let mut chunks = state.run(&m, 5, &x[..5 * b * 8]).unwrap();
    chunks.extend(state.run(&m, 7, &x[5 * b * 8..]).unwrap());
    assert!(same_bits(&chunks, &whole));
}

#[test]
fn quantized_save_load_round_trip() {
    let config = Config::new(10, 20).bidirectional(true).proj_size(6);
    let original = model(&config, 7);
    let (t, b) = (15, 3);
    let x = Rng::new(4).vec(t * b * 10);
    for precision in [Precision::Bf16, Precision::Int8] {
        let mut ws = Workspace::new(&original).unwrap();
        ws.set_precision(precision).unwrap();
        let expected = original.forward(&mut ws, &Input::new(t, b, &x)).unwrap();
        let bytes = original.save_quantized_to_vec(precision).unwrap();
        assert_eq!(&bytes[8..12], &[1, 0, 2, 0]); /* format 1.2 */
        assert!(bytes.len() * 10 < original.save_to_vec().unwrap().len() * 6);
        let path = temp_path(&format!("quantized-{:?}.lstm", precision));
        original.save_quantized(precision, &path).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), bytes);
        let from_file = Model::load(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        let from_bytes = Model::load_from_slice(&bytes).unwrap();
        for loaded in [&from_file, &from_bytes] {
            let out = loaded.forward(&mut ws, &Input::new(t, b, &x)).unwrap();
            assert_eq!(out, expected, "{:?}", precision);
            /* saved again in that precision: the same bytes */
            assert_eq!(loaded.save_quantized_to_vec(precision).unwrap(), bytes);
            /* its f32 parameters are the quantized values, readable as such */
            let mut copy = vec![0f32; loaded.param_count()];
            loaded.get_params(&mut copy).unwrap();
            assert!(same_bits(loaded.params(), &copy));
        }
    }
}

#[test]
fn loaded_int8_weights_run_as_stored_until_the_parameters_change() {
    /* Rows whose largest |q| is not 127 (as PyTorch's per-tensor scales
     * leave them; written here by editing a file's scales): quantizing
     * their q s again would change them, so equality with the network
     * loaded from the same bytes shows the stored q and s ran. */
    let original = model(&Config::new(6, 8), 9);
    let mut bytes = original.save_quantized_to_vec(Precision::Int8).unwrap();
    let bytes_before = bytes.clone();
    /* the QTNS payload: 16 bytes of section header, 40 of fields, then the
     * 2 x 32 scales of W; halve every q instead of editing scales */
    let qtns = bytes.windows(4).position(|w| w == b"QTNS").unwrap();
    let values = qtns + 16 + 40 + 4 * 2 * 32;
    for k in 0..32 * 14 {
        bytes[values + k] = ((bytes[values + k] as i8) / 2) as u8;
    }
    let length = u64::from_le_bytes(bytes[qtns + 8..qtns + 16].try_into().unwrap()) as usize;
    let crc = crc32c(&bytes[qtns..qtns + 16 + length]);
    bytes[qtns + 16 + length..qtns + 20 + length].copy_from_slice(&crc.to_le_bytes());
    assert_ne!(bytes, bytes_before);

    let (t, b) = (7, 2);
    let x = Rng::new(3).vec(t * b * 6);
    let mut loaded = Model::load_from_slice(&bytes).unwrap();
    let mut ws = Workspace::new(&loaded).unwrap();
    ws.set_precision(Precision::Int8).unwrap();
    let stored = loaded.forward(&mut ws, &Input::new(t, b, &x)).unwrap().y;
    let net = Network::load_from_slice(&bytes).unwrap();
    let mut net_ws = net.workspace().unwrap();
    net_ws.set_precision(Precision::Int8).unwrap();
    let from_network = net
        .infer(&mut net_ws, &NetworkInput::features(t, b, &x))
        .unwrap();
    assert!(same_bits(&stored, &from_network));
    assert_eq!(
        loaded.save_quantized_to_vec(Precision::Int8).unwrap(),
        bytes
    );
    /* the writable view counts as a change: quantized again from q s */
    let _ = loaded.params_mut();
    let again = loaded.forward(&mut ws, &Input::new(t, b, &x)).unwrap().y;
    assert!(!same_bits(&again, &stored));
    /* an optimizer bound to a loaded model sees its real buffer */
    let mut other = Model::load_from_slice(&bytes).unwrap();
    let before = other.params().to_vec();
    let _opt = Optimizer::new(&OptimOptions::sgd().lr(0.1), &mut other).unwrap();
    assert!(same_bits(other.params(), &before));
}

#[test]
fn quantized_network_round_trip() {
    let config = NetworkConfig {
        embedding: Some(Embedding {
            num_embeddings: 30,
            embedding_dim: 8,
            padding_idx: Some(0),
        }),
        lstm: Config::new(8, 16).num_layers(2),
        head: Head::LastStep,
        head_size: 3,
        loss: Loss::CrossEntropy,
    };
    let mut net = Network::new(&config).unwrap();
    net.init(4).unwrap();
    let (t, b) = (9, 4);
    let mut rng = Rng::new(5);
    let tokens: Vec<i64> = (0..t * b).map(|_| (rng.next_u64() % 30) as i64).collect();
    let mut ws = net.workspace().unwrap();
    let reference = net
        .infer(&mut ws, &NetworkInput::tokens(t, b, &tokens))
        .unwrap();
    ws.set_precision(Precision::Int8).unwrap();
    let expected = net
        .infer(&mut ws, &NetworkInput::tokens(t, b, &tokens))
        .unwrap();
    assert!(relative(&expected, &reference) < 0.03);
    let path = temp_path("quantized-network.lstm");
    net.save_quantized(Precision::Int8, &path).unwrap();
    let loaded = Network::load(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(net.save_quantized_to_vec(Precision::Int8).unwrap(), bytes);
    let out = loaded
        .infer(&mut ws, &NetworkInput::tokens(t, b, &tokens))
        .unwrap();
    assert!(same_bits(&out, &expected));
    assert_eq!(
        loaded.save_quantized_to_vec(Precision::Int8).unwrap(),
        bytes
    );
}

/// CRC-32C (Castagnoli, reflected), as the model format uses it.
fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0x82F6_3B78 & (crc & 1).wrapping_neg());
        }
    }
    !crc
}
