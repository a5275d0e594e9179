//! Whole sequence models through the safe API: training, files with
//! metadata, and the checks made before C is called.
mod common;

use common::{same_bits, temp_path, Rng};
use lstm::network::{Embedding, Head, Loss, Meta, Network, NetworkConfig, NetworkInput, Targets};
use lstm::{status, Config, Input, Layout, Model, OptimOptions, Optimizer};

/// A token classifier: is token 1 anywhere in the sequence?
fn classifier() -> Network {
    let config = NetworkConfig {
        embedding: Some(Embedding {
            num_embeddings: 8,
            embedding_dim: 6,
            padding_idx: Some(0),
        }),
        lstm: Config::new(6, 12).bidirectional(true),
        head: Head::LastStep,
        head_size: 2,
        loss: Loss::CrossEntropy,
    };
    let mut net = Network::new(&config).unwrap();
    net.init(7).unwrap();
    net
}

/// A batch of B sequences of up to T tokens (padding 0 past each end),
/// time-major, with their lengths and classes.
fn batch(rng: &mut Rng, t: usize, b: usize) -> (Vec<i64>, Vec<usize>, Vec<i32>) {
    let mut tokens = vec![0i64; t * b];
    let mut lengths = vec![0usize; b];
    let mut classes = vec![0i32; b];
    for s in 0..b {
        lengths[s] = 1 + (rng.next_u64() % t as u64) as usize;
        for step in 0..lengths[s] {
            let token = 2 + (rng.next_u64() % 6) as i64;
            tokens[step * b + s] = token;
        }
        if rng.next_u64() % 2 == 0 {
            let at = (rng.next_u64() % lengths[s] as u64) as usize;
            tokens[at * b + s] = 1;
            classes[s] = 1;
        }
    }
    (tokens, lengths, classes)
}

#[test]
fn a_token_classifier_learns_and_ships_in_one_file() {
    let mut net = classifier();
    let mut options = OptimOptions::adam();
    options.lr = 0.02;
    let mut opt = Optimizer::new(&options, &mut net).unwrap();
    assert_eq!(opt.param_count(), net.param_count());
    let mut ws = net.workspace().unwrap();
    let mut rng = Rng::new(5);
    let (t, b) = (7, 16);
    let mut first = 0.0;
    let mut last = 0.0;
    for step in 0..150 {
        let (tokens, lengths, classes) = batch(&mut rng, t, b);
        let input = NetworkInput::tokens(t, b, &tokens).lengths(&lengths);
        opt.zero_grads(&mut net).unwrap();
        let logits = net.train_forward(&mut ws, &input).unwrap();
        assert_eq!(logits.len(), b * 2);
        let loss = net
            .train_backward(&mut ws, &Targets::Classes(&classes))
            .unwrap();
        /* the loss backward reports is the loss of the forward's output */
        let again = net
            .loss(&input, &logits, &Targets::Classes(&classes))
            .unwrap();
        assert!((loss - again).abs() <= 1e-6 * loss.abs().max(1.0));
        opt.step(&mut net).unwrap();
        if step == 0 {
            first = loss;
        } else if step >= 140 {
            last += loss / 10.0;
        }
    }
    assert!(first > 0.5, "the untrained loss {} is near ln 2", first);
    assert!(last < 0.2, "the loss went from {} to {} only", first, last);

    net.set_meta("labels", &Meta::Text("absent\npresent".into()))
        .unwrap();
    net.set_meta("blob", &Meta::Bytes(vec![0, 255, 7])).unwrap();
    let path = temp_path("classifier.lstm");
    net.save(&path).unwrap();
    let loaded = Network::load(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(loaded.config(), net.config());
    assert_eq!(
        loaded.meta_keys(),
        vec!["blob".to_string(), "labels".to_string()]
    );
    assert_eq!(
        loaded.meta("labels"),
        Some(Meta::Text("absent\npresent".into()))
    );
    assert_eq!(loaded.meta("blob"), Some(Meta::Bytes(vec![0, 255, 7])));
    assert_eq!(loaded.meta("missing"), None);

    let (tokens, lengths, classes) = batch(&mut Rng::new(99), t, b);
    let input = NetworkInput::tokens(t, b, &tokens).lengths(&lengths);
    let mut ws2 = loaded.workspace().unwrap();
    let a = net.infer(&mut ws, &input).unwrap();
    let c = loaded.infer(&mut ws2, &input).unwrap();
    assert!(same_bits(&a, &c));
    let correct = (0..b)
        .filter(|&s| (a[2 * s + 1] > a[2 * s]) == (classes[s] == 1))
        .count();
    assert!(
        correct >= b - 2,
        "{} of {} held-out sequences right",
        correct,
        b
    );
}

#[test]
fn a_features_network_without_head_is_its_lstm() {
    let config = NetworkConfig {
        embedding: None,
        lstm: Config::new(3, 5).num_layers(2).proj_size(2),
        head: Head::None,
        head_size: 0,
        loss: Loss::Mse,
    };
    let mut net = Network::new(&config).unwrap();
    net.init(3).unwrap();
    /* the same file read as a plain model gives its LSTM, run by another call */
    let model = Model::load_from_slice(&net.save_to_vec().unwrap()).unwrap();
    let (t, b) = (4, 3);
    let x = Rng::new(8).vec(t * b * 3);
    let lengths = [4usize, 1, 3];
    let mut ws = net.workspace().unwrap();
    let out = net
        .infer(
            &mut ws,
            &NetworkInput::features(t, b, &x)
                .lengths(&lengths)
                .layout(Layout::BatchMajor),
        )
        .unwrap();
    let mut mws = lstm::Workspace::new(&model).unwrap();
    let y = model
        .forward(
            &mut mws,
            &Input::new(t, b, &x)
                .lengths(&lengths)
                .layout(Layout::BatchMajor),
        )
        .unwrap()
        .y;
    assert_eq!(out.len(), t * b * 2);
    assert!(same_bits(&out, &y));
}

#[test]
fn bad_input_is_refused_before_or_by_c() {
    let mut net = classifier();
    let mut ws = net.workspace().unwrap();
    let tokens = vec![2i64; 6];
    /* a slice of the wrong length never reaches C */
    let e = net
        .infer(&mut ws, &NetworkInput::tokens(4, 2, &tokens))
        .unwrap_err();
    assert_eq!(e.status, status::SHAPE);
    let x = vec![0f32; 3 * 2 * 6];
    let e = net
        .infer(&mut ws, &NetworkInput::features(3, 2, &x))
        .unwrap_err();
    assert_eq!(e.status, status::ARG);
    /* an id outside the vocabulary: C names its position */
    let mut bad = tokens.clone();
    bad[4] = 8;
    let e = net
        .infer(&mut ws, &NetworkInput::tokens(3, 2, &bad))
        .unwrap_err();
    assert_eq!(e.status, status::ARG);
    assert!(e.message.contains('4'), "{}", e.message);
    /* backward without a forward; targets the loss does not read */
    let e = net
        .train_backward(&mut ws, &Targets::Classes(&[0, 1]))
        .unwrap_err();
    assert_eq!(e.status, status::STATE);
    net.train_forward(&mut ws, &NetworkInput::tokens(3, 2, &tokens))
        .unwrap();
    let e = net
        .train_backward(&mut ws, &Targets::Values(&[0.0; 4]))
        .unwrap_err();
    assert_eq!(e.status, status::ARG);
    let e = net
        .train_backward(&mut ws, &Targets::Classes(&[0]))
        .unwrap_err();
    assert_eq!(e.status, status::SHAPE);
    let e = net
        .train_backward(&mut ws, &Targets::Classes(&[0, 2]))
        .unwrap_err();
    assert_eq!(e.status, status::ARG);
    net.train_backward(&mut ws, &Targets::Classes(&[0, 1]))
        .unwrap();
    /* metadata */
    assert_eq!(
        net.remove_meta("none").unwrap_err().status,
        status::NOT_FOUND
    );
    assert_eq!(
        net.set_meta("", &Meta::Text("x".into()))
            .unwrap_err()
            .status,
        status::SIZE
    );
    assert_eq!(
        net.set_meta("a\0b", &Meta::Text("x".into()))
            .unwrap_err()
            .status,
        status::ARG
    );
}
