mod common;

use common::{model, same_bits, Rng};
use lstm::{Config, Input, State, Workspace};

#[test]
fn streaming_equals_whole_sequence() {
    let (t, b, i, h, p) = (7, 3, 4, 6, 3);
    for config in [
        Config::new(i, h),
        Config::new(i, h).num_layers(3).proj_size(p).peephole(true),
    ] {
        let model = model(&config, 13);
        let r = config.state_size();
        let layers = config.num_layers;
        let x = Rng::new(6).vec(t * b * i);
        let mut ws = Workspace::new(&model).unwrap();
        let whole = model.forward(&mut ws, &Input::new(t, b, &x)).unwrap();

        /* a step at a time */
        let mut state = State::new(&model, b).unwrap();
        assert_eq!(state.batch(), b);
        let mut y = Vec::new();
        for step in 0..t {
            y.extend(
                state
                    .step(&model, &x[step * b * i..(step + 1) * b * i])
                    .unwrap(),
            );
        }
        assert!(same_bits(&y, &whole.y));
        let (h_n, c_n) = state.get().unwrap();
        assert_eq!(h_n.len(), layers * b * r);
        assert!(same_bits(&h_n, &whole.h_n));
        assert!(same_bits(&c_n, &whole.c_n));

        /* chunks of 3 and 4 after a reset */
        state.reset().unwrap();
        let mut y = state.run(&model, 3, &x[..3 * b * i]).unwrap();
        let mut rest = vec![0.0; 4 * b * r];
        state
            .run_into(&model, 4, &x[3 * b * i..], Some(&mut rest))
            .unwrap();
        y.extend(rest);
        assert!(same_bits(&y, &whole.y));

        /* set() continues from a given state, like h0/c0 */
        let h0 = Rng::new(7).vec(layers * b * r);
        let c0 = Rng::new(8).vec(layers * b * h);
        state.set(Some(&h0), Some(&c0)).unwrap();
        let y = state.run(&model, t, &x).unwrap();
        let from = model
            .forward(&mut ws, &Input::new(t, b, &x).h0(&h0).c0(&c0))
            .unwrap();
        assert!(same_bits(&y, &from.y));
        state.set(None, None).unwrap();
        let (zero_h, _) = state.get().unwrap();
        assert!(zero_h.iter().all(|&v| v == 0.0));
    }
}
