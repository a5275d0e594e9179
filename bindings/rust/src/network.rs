//! Whole sequence models (`lstm/network.h`): an input (token ids through an
//! embedding, or float features), the LSTM stack, an optional dense head on
//! every step or on each sequence's last step, and a loss, in one
//! [`Network`] that trains, runs, and saves to one file with its metadata.
//!
//! ```no_run
//! use lstm::network::{Network, NetworkInput};
//! # fn main() -> lstm::Result<()> {
//! let net = Network::load("sentiment.lstm")?;
//! let mut ws = net.workspace()?;
//! let tokens: Vec<i64> = vec![4, 17, 9, 0, 3, 3]; // T = 3, B = 2, time-major
//! let lengths = [3usize, 2];
//! let logits = net.infer(&mut ws, &NetworkInput::tokens(3, 2, &tokens).lengths(&lengths))?;
//! # let _ = logits; Ok(()) }
//! ```

use std::ffi::{CStr, CString};
use std::fmt;
use std::os::raw::{c_char, c_void};
use std::path::Path;
use std::ptr;

use crate::{
    check, next_id, path_to_cstring, saved_bytes, status, sys, Config, Error, Layout, Optimizer,
    Parameters, Precision, Result, Workspace,
};

/// Where a network's head sits (`lstm_head_placement`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Head {
    /// No head: the output is the LSTM's y, every step.
    None,
    /// A dense layer on every step's y: output `[T][B][O]`.
    EveryStep,
    /// A dense layer on each sequence's final hidden state (both directions
    /// side by side): output `[B][O]`.
    LastStep,
}

/// A network's loss (`lstm_loss_kind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Loss {
    /// None: backward takes dL/d(output) ([`Targets::Grad`]).
    None,
    /// Softmax cross-entropy, one class per row ([`Targets::Classes`]).
    CrossEntropy,
    /// Binary cross-entropy on logits ([`Targets::Values`] in [0, 1]).
    BceWithLogits,
    /// Mean squared error ([`Targets::Values`]).
    Mse,
}

/// An embedding's configuration (`lstm_embedding_config`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Embedding {
    /// V: the vocabulary.
    pub num_embeddings: usize,
    /// E: floats per token; must be the LSTM's input size.
    pub embedding_dim: usize,
    /// The padding row, whose gradient stays zero (negative counts from the end).
    pub padding_idx: Option<i64>,
}

/// A network's configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct NetworkConfig {
    /// Token input through this embedding; `None` for float features.
    pub embedding: Option<Embedding>,
    /// The LSTM stack.
    pub lstm: Config,
    /// Where the head sits.
    pub head: Head,
    /// O, the head's outputs (0 without a head).
    pub head_size: usize,
    /// The loss.
    pub loss: Loss,
}

/// The input of a network call: its shape, its data (token ids or
/// features), and optionally lengths, layout and initial states.
#[derive(Clone, Copy, Debug)]
pub struct NetworkInput<'a> {
    seq_len: usize,
    batch: usize,
    tokens: Option<&'a [i64]>,
    features: Option<&'a [f32]>,
    lengths: Option<&'a [usize]>,
    layout: Layout,
    h0: Option<&'a [f32]>,
    c0: Option<&'a [f32]>,
}

impl<'a> NetworkInput<'a> {
    /// Token ids `[T][B]` (or `[B][T]` batch-major) for a token network.
    pub fn tokens(seq_len: usize, batch: usize, tokens: &'a [i64]) -> NetworkInput<'a> {
        NetworkInput {
            seq_len,
            batch,
            tokens: Some(tokens),
            features: None,
            lengths: None,
            layout: Layout::Model,
            h0: None,
            c0: None,
        }
    }

    /// Features `[T][B][I]` (or `[B][T][I]`) for a features network.
    pub fn features(seq_len: usize, batch: usize, features: &'a [f32]) -> NetworkInput<'a> {
        NetworkInput {
            tokens: None,
            features: Some(features),
            ..NetworkInput::tokens(seq_len, batch, &[])
        }
    }

    /// B lengths in [1, T], one per sequence.
    pub fn lengths(mut self, lengths: &'a [usize]) -> NetworkInput<'a> {
        self.lengths = Some(lengths);
        self
    }

    /// The layout of tokens, features, output and targets for this call.
    pub fn layout(mut self, layout: Layout) -> NetworkInput<'a> {
        self.layout = layout;
        self
    }

    /// Initial hidden states `[L·D][B][R]`.
    pub fn h0(mut self, h0: &'a [f32]) -> NetworkInput<'a> {
        self.h0 = Some(h0);
        self
    }

    /// Initial cell states `[L·D][B][H]`.
    pub fn c0(mut self, c0: &'a [f32]) -> NetworkInput<'a> {
        self.c0 = Some(c0);
        self
    }
}

/// What the loss compares the output with; rows are the output's (T·B, or
/// B with a last-step head).
#[derive(Clone, Copy, Debug)]
pub enum Targets<'a> {
    /// Cross-entropy: one class per row; a negative class leaves its row out.
    Classes(&'a [i32]),
    /// BCE and MSE: `[rows][O]`.
    Values(&'a [f32]),
    /// No loss: dL/d(output), `[rows][O]`.
    Grad(&'a [f32]),
}

/// A metadata value (`lstm_meta_kind`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Meta {
    /// UTF-8 text.
    Text(String),
    /// Any bytes.
    Bytes(Vec<u8>),
}

/// A whole sequence model (`lstm_network`). Freed on drop.
pub struct Network {
    raw: *mut sys::lstm_network,
    config: NetworkConfig,
    output_size: usize,
    id: u64,
}

// SAFETY: as for Model: a C network is heap memory with no thread
// affinity; every `&self` method makes only read-only C calls (inference,
// loss, getters, saving), and everything that writes it takes `&mut self`.
unsafe impl Send for Network {}
// SAFETY: see above.
unsafe impl Sync for Network {}

impl fmt::Debug for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Network")
            .field("config", &self.config)
            .field("param_count", &self.param_count())
            .finish()
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        // SAFETY: we own raw.
        unsafe { sys::lstm_network_destroy(self.raw) }
    }
}

fn head_raw(head: Head) -> u32 {
    match head {
        Head::None => sys::LSTM_HEAD_NONE,
        Head::EveryStep => sys::LSTM_HEAD_EVERY_STEP,
        Head::LastStep => sys::LSTM_HEAD_LAST_STEP,
    }
}

fn loss_raw(loss: Loss) -> u32 {
    match loss {
        Loss::None => sys::LSTM_LOSS_NONE,
        Loss::CrossEntropy => sys::LSTM_LOSS_CROSS_ENTROPY,
        Loss::BceWithLogits => sys::LSTM_LOSS_BCE_WITH_LOGITS,
        Loss::Mse => sys::LSTM_LOSS_MSE,
    }
}

fn key_cstring(key: &str) -> Result<CString> {
    CString::new(key).map_err(|_| Error::new(status::ARG, "the key contains a NUL byte"))
}

/// `name` must hold exactly `want` elements.
fn check_exact(name: &str, got: usize, want: usize) -> Result<()> {
    if got == want {
        Ok(())
    } else {
        Err(Error::new(
            status::SHAPE,
            format!("{} holds {} values; the call needs {}", name, got, want),
        ))
    }
}

impl Network {
    /// Wraps a network just made by C, reading its configuration back;
    /// destroys it on failure.
    fn from_raw(raw: *mut sys::lstm_network) -> Result<Network> {
        let mut c = sys::lstm_network_config {
            struct_size: std::mem::size_of::<sys::lstm_network_config>(),
            embedding: ptr::null(),
            lstm: ptr::null(),
            head: 0,
            loss: 0,
            head_size: 0,
        };
        // SAFETY: raw is a valid network; the pointers it gives are its own
        // copies, valid while it lives, and read at once.
        let status = unsafe { sys::lstm_network_get_config(raw, &mut c) };
        if status != sys::LSTM_OK || c.lstm.is_null() {
            let error = Error::last(status);
            // SAFETY: we still own raw.
            unsafe { sys::lstm_network_destroy(raw) };
            return Err(error);
        }
        // SAFETY: as above.
        let lstm = Config::from_raw(unsafe { &*c.lstm });
        // SAFETY: as above.
        let embedding = unsafe { c.embedding.as_ref() }.map(|e| Embedding {
            num_embeddings: e.num_embeddings,
            embedding_dim: e.embedding_dim,
            padding_idx: if e.flags & sys::LSTM_EMBEDDING_PADDING != 0 {
                Some(e.padding_idx)
            } else {
                None
            },
        });
        let head = match c.head {
            sys::LSTM_HEAD_EVERY_STEP => Head::EveryStep,
            sys::LSTM_HEAD_LAST_STEP => Head::LastStep,
            _ => Head::None,
        };
        let loss = match c.loss {
            sys::LSTM_LOSS_CROSS_ENTROPY => Loss::CrossEntropy,
            sys::LSTM_LOSS_BCE_WITH_LOGITS => Loss::BceWithLogits,
            sys::LSTM_LOSS_MSE => Loss::Mse,
            _ => Loss::None,
        };
        let output_size = if head == Head::None {
            lstm.output_size()
        } else {
            c.head_size
        };
        Ok(Network {
            raw,
            config: NetworkConfig {
                embedding,
                lstm,
                head,
                head_size: c.head_size,
                loss,
            },
            output_size,
            id: next_id(),
        })
    }

    /// Creates a network with every parameter at zero; give it weights with
    /// [`Network::init`].
    pub fn new(config: &NetworkConfig) -> Result<Network> {
        let lstm = config.lstm.to_raw();
        let embedding = config.embedding.map(|e| sys::lstm_embedding_config {
            struct_size: std::mem::size_of::<sys::lstm_embedding_config>(),
            num_embeddings: e.num_embeddings,
            embedding_dim: e.embedding_dim,
            flags: if e.padding_idx.is_some() {
                sys::LSTM_EMBEDDING_PADDING
            } else {
                0
            },
            padding_idx: e.padding_idx.unwrap_or(0),
        });
        let raw_config = sys::lstm_network_config {
            struct_size: std::mem::size_of::<sys::lstm_network_config>(),
            embedding: embedding.as_ref().map_or(ptr::null(), |e| e as *const _),
            lstm: &lstm,
            head: head_raw(config.head),
            loss: loss_raw(config.loss),
            head_size: config.head_size,
        };
        let mut raw = ptr::null_mut();
        // SAFETY: the config and what it points to outlive the call.
        check(unsafe { sys::lstm_network_create(&raw_config, &mut raw) })?;
        Network::from_raw(raw)
    }

    /// Loads the network stored in a model file (a file with an LSTM only
    /// gives a features network without a head).
    pub fn load<P: AsRef<Path>>(path: P) -> Result<Network> {
        let path = path_to_cstring(path.as_ref())?;
        let mut raw = ptr::null_mut();
        // SAFETY: NUL-terminated path, valid out pointer.
        check(unsafe { sys::lstm_network_load(path.as_ptr(), &mut raw) })?;
        Network::from_raw(raw)
    }

    /// Loads a network from a model file's bytes.
    pub fn load_from_slice(bytes: &[u8]) -> Result<Network> {
        let mut raw = ptr::null_mut();
        // SAFETY: bytes is valid for its length.
        check(unsafe {
            sys::lstm_network_load_buffer(bytes.as_ptr() as *const c_void, bytes.len(), &mut raw)
        })?;
        Network::from_raw(raw)
    }

    /// Saves the network (and its metadata) to a file, atomically.
    pub fn save<P: AsRef<Path>>(&self, path: P) -> Result<()> {
        let path = path_to_cstring(path.as_ref())?;
        // SAFETY: read-only network, NUL-terminated path.
        check(unsafe { sys::lstm_network_save(self.raw, ptr::null(), path.as_ptr()) })
    }

    /// Saves the network and an optimizer's state to a file, atomically.
    pub fn save_with_optimizer<P: AsRef<Path>>(
        &self,
        optimizer: &Optimizer,
        path: P,
    ) -> Result<()> {
        let path = path_to_cstring(path.as_ref())?;
        // SAFETY: both only read.
        check(unsafe { sys::lstm_network_save(self.raw, optimizer.raw, path.as_ptr()) })
    }

    /// The model file's bytes.
    pub fn save_to_vec(&self) -> Result<Vec<u8>> {
        // SAFETY: read-only network; saved_bytes gives a buffer of capacity
        // bytes, or NULL with 0 for the size query.
        saved_bytes(|buffer, capacity, size| unsafe {
            sys::lstm_network_save_buffer(self.raw, ptr::null(), buffer, capacity, size)
        })
    }

    /// Saves the network for inference in bf16 or int8, atomically
    /// (`lstm_network_save_quantized`, liblstm 0.7.0): its LSTM's W and W_hr
    /// in that precision, as [`crate::Model::save_quantized`] saves a model; its
    /// embedding, head and metadata as [`Network::save`] writes them; no
    /// optimizer.
    pub fn save_quantized<P: AsRef<Path>>(&self, precision: Precision, path: P) -> Result<()> {
        let path = path_to_cstring(path.as_ref())?;
        // SAFETY: read-only network, NUL-terminated path.
        check(unsafe { sys::lstm_network_save_quantized(self.raw, precision.raw(), path.as_ptr()) })
    }

    /// The bytes [`Network::save_quantized`] writes
    /// (`lstm_network_save_quantized_buffer`).
    pub fn save_quantized_to_vec(&self, precision: Precision) -> Result<Vec<u8>> {
        // SAFETY: read-only network; saved_bytes gives a buffer of capacity
        // bytes, or NULL with 0 for the size query.
        saved_bytes(|buffer, capacity, size| unsafe {
            sys::lstm_network_save_quantized_buffer(
                self.raw,
                precision.raw(),
                buffer,
                capacity,
                size,
            )
        })
    }

    /// The configuration.
    pub fn config(&self) -> &NetworkConfig {
        &self.config
    }

    /// O: floats per output row (the head's outputs, or D·R without a head).
    pub fn output_size(&self) -> usize {
        self.output_size
    }

    /// Parameters of every part.
    pub fn param_count(&self) -> usize {
        // SAFETY: read-only.
        unsafe { sys::lstm_network_param_count(self.raw) }
    }

    /// PyTorch's initialisation of every part, from `seed`.
    pub fn init(&mut self, seed: u64) -> Result<()> {
        // SAFETY: exclusive access.
        check(unsafe { sys::lstm_network_init(self.raw, seed, 0) })
    }

    /// Sets every part's gradients to zero.
    pub fn zero_grads(&mut self) -> Result<()> {
        // SAFETY: exclusive access.
        check(unsafe { sys::lstm_network_zero_grads(self.raw) })
    }

    /// A workspace for this network's calls.
    pub fn workspace(&self) -> Result<Workspace> {
        let mut raw = ptr::null_mut();
        // SAFETY: lstm_network_model only reads the handle; the workspace
        // only reads the model's shape.
        check(unsafe { sys::lstm_workspace_create(sys::lstm_network_model(self.raw), &mut raw) })?;
        Ok(Workspace {
            raw,
            trained: None,
            network: None,
            training_precision: Precision::Fp32,
        })
    }

    /// Rows of the output of a call of this shape.
    fn output_rows(&self, seq_len: usize, batch: usize) -> usize {
        if self.config.head == Head::LastStep {
            batch
        } else {
            seq_len.saturating_mul(batch)
        }
    }

    /// Checks every slice of an input against the call's shape.
    fn check_input(&self, input: &NetworkInput<'_>) -> Result<()> {
        let (t, b) = (input.seq_len, input.batch);
        let lstm = &self.config.lstm;
        let tb = t.saturating_mul(b);
        match (
            self.config.embedding.is_some(),
            input.tokens,
            input.features,
        ) {
            (true, Some(tokens), None) => check_exact("tokens", tokens.len(), tb)?,
            (false, None, Some(x)) => {
                check_exact("features", x.len(), tb.saturating_mul(lstm.input_size))?
            }
            (true, _, _) => {
                return Err(Error::new(
                    status::ARG,
                    "a token network takes tokens, not features",
                ))
            }
            (false, _, _) => {
                return Err(Error::new(
                    status::ARG,
                    "a features network takes features, not tokens",
                ))
            }
        }
        if let Some(lengths) = input.lengths {
            check_exact("lengths", lengths.len(), b)?;
        }
        let layers = lstm.num_layers.max(1).saturating_mul(lstm.directions());
        if let Some(h0) = input.h0 {
            check_exact(
                "h0",
                h0.len(),
                layers.saturating_mul(b).saturating_mul(lstm.state_size()),
            )?;
        }
        if let Some(c0) = input.c0 {
            check_exact(
                "c0",
                c0.len(),
                layers.saturating_mul(b).saturating_mul(lstm.hidden_size),
            )?;
        }
        Ok(())
    }

    fn raw_args(input: &NetworkInput<'_>) -> (sys::lstm_sequences, sys::lstm_network_inputs) {
        let mut seq = sys::LSTM_SEQUENCES_INIT;
        seq.steps = input.seq_len;
        seq.batch = input.batch;
        seq.layout = input.layout.raw();
        seq.lengths = input.lengths.map_or(ptr::null(), |l| l.as_ptr());
        let mut inputs = sys::LSTM_NETWORK_INPUTS_INIT;
        inputs.tokens = input.tokens.map_or(ptr::null(), |t| t.as_ptr());
        inputs.features = input.features.map_or(ptr::null(), |x| x.as_ptr());
        inputs.h0 = input.h0.map_or(ptr::null(), |h| h.as_ptr());
        inputs.c0 = input.c0.map_or(ptr::null(), |c| c.as_ptr());
        (seq, inputs)
    }

    /// Runs `input` and returns the output: `[T][B][O]` in the call's
    /// layout (zero past each sequence's end), or `[B][O]` with a
    /// last-step head.
    pub fn infer(&self, ws: &mut Workspace, input: &NetworkInput<'_>) -> Result<Vec<f32>> {
        self.forward(ws, input, false)
    }

    /// The training forward: [`Network::infer`] that keeps what
    /// [`Network::train_backward`] needs in `ws`.
    pub fn train_forward(
        &mut self,
        ws: &mut Workspace,
        input: &NetworkInput<'_>,
    ) -> Result<Vec<f32>> {
        self.forward(ws, input, true)
    }

    fn forward(
        &self,
        ws: &mut Workspace,
        input: &NetworkInput<'_>,
        train: bool,
    ) -> Result<Vec<f32>> {
        self.check_input(input)?;
        let rows = self.output_rows(input.seq_len, input.batch);
        let mut output = vec![0f32; rows.saturating_mul(self.output_size)];
        let (seq, inputs) = Network::raw_args(input);
        let mut outputs = sys::LSTM_NETWORK_OUTPUTS_INIT;
        outputs.output = output.as_mut_ptr();
        ws.trained = None;
        ws.network = None;
        // SAFETY: every slice was checked against the shape; the network is
        // only read (train forward writes the workspace alone).
        check(unsafe {
            if train {
                sys::lstm_network_train_forward(self.raw, ws.raw, &seq, &inputs, &outputs)
            } else {
                sys::lstm_network_infer(self.raw, ws.raw, &seq, &inputs, &outputs)
            }
        })?;
        if train {
            ws.network = Some((self.id, rows));
        }
        Ok(output)
    }

    fn raw_targets(&self, targets: &Targets<'_>, rows: usize) -> Result<sys::lstm_targets> {
        let mut raw = sys::LSTM_TARGETS_INIT;
        let values = rows.saturating_mul(self.output_size);
        match (*targets, self.config.loss) {
            (Targets::Classes(c), Loss::CrossEntropy) => {
                check_exact("classes", c.len(), rows)?;
                raw.classes = c.as_ptr();
            }
            (Targets::Values(v), Loss::BceWithLogits | Loss::Mse) => {
                check_exact("values", v.len(), values)?;
                raw.values = v.as_ptr();
            }
            (Targets::Grad(g), Loss::None) => {
                check_exact("grad", g.len(), values)?;
                raw.grad = g.as_ptr();
            }
            (_, loss) => {
                return Err(Error::new(
                    status::ARG,
                    format!("these targets are not what the loss {:?} reads", loss),
                ))
            }
        }
        Ok(raw)
    }

    /// Backward of the last [`Network::train_forward`] on `ws`: the loss
    /// (returned), then every part's gradients, added to their buffers.
    pub fn train_backward(&mut self, ws: &mut Workspace, targets: &Targets<'_>) -> Result<f64> {
        self.train_backward_masked(ws, targets, None)
    }

    /// [`Network::train_backward`] with a row mask: one value per output
    /// row, 0 to leave the row out of the loss (a warm-up, unscored steps).
    pub fn train_backward_masked(
        &mut self,
        ws: &mut Workspace,
        targets: &Targets<'_>,
        mask: Option<&[u8]>,
    ) -> Result<f64> {
        let rows = match ws.network {
            Some((id, rows)) if id == self.id => rows,
            _ => {
                return Err(Error::new(
                    status::STATE,
                    "the workspace holds no training forward of this network",
                ))
            }
        };
        let mut raw = self.raw_targets(targets, rows)?;
        if let Some(mask) = mask {
            check_exact("mask", mask.len(), rows)?;
            raw.mask = mask.as_ptr();
        }
        let mut loss = 0.0;
        // SAFETY: the targets were checked against the forward's shape,
        // which C keeps in the workspace; exclusive access to the network.
        let status = unsafe { sys::lstm_network_train_backward(self.raw, ws.raw, &raw, &mut loss) };
        if status == sys::LSTM_OK {
            ws.network = None; // backward consumes the forward's activations
        }
        check(status)?;
        Ok(loss)
    }

    /// The loss of an output of [`Network::infer`] for the same `input`.
    pub fn loss(
        &self,
        input: &NetworkInput<'_>,
        output: &[f32],
        targets: &Targets<'_>,
    ) -> Result<f64> {
        let rows = self.output_rows(input.seq_len, input.batch);
        check_exact(
            "output",
            output.len(),
            rows.saturating_mul(self.output_size),
        )?;
        if let Some(lengths) = input.lengths {
            check_exact("lengths", lengths.len(), input.batch)?;
        }
        let raw = self.raw_targets(targets, rows)?;
        let (seq, _) = Network::raw_args(input);
        let mut loss = 0.0;
        // SAFETY: every slice checked; read-only.
        check(unsafe { sys::lstm_network_loss(self.raw, &seq, output.as_ptr(), &raw, &mut loss) })?;
        Ok(loss)
    }

    /// The metadata entry `key`, if there is one.
    pub fn meta(&self, key: &str) -> Option<Meta> {
        let key = key_cstring(key).ok()?;
        let (mut kind, mut value, mut size) = (0u32, ptr::null::<c_void>(), 0usize);
        // SAFETY: read-only; the value is copied at once.
        let status = unsafe {
            sys::lstm_network_get_meta(self.raw, key.as_ptr(), &mut kind, &mut value, &mut size)
        };
        if status != sys::LSTM_OK {
            return None;
        }
        // SAFETY: C gives size valid bytes at value.
        let bytes = unsafe { std::slice::from_raw_parts(value as *const u8, size) }.to_vec();
        Some(if kind == sys::LSTM_META_TEXT {
            Meta::Text(String::from_utf8_lossy(&bytes).into_owned())
        } else {
            Meta::Bytes(bytes)
        })
    }

    /// Sets (or replaces) a metadata entry.
    pub fn set_meta(&mut self, key: &str, value: &Meta) -> Result<()> {
        let key = key_cstring(key)?;
        let (kind, bytes) = match value {
            Meta::Text(text) => (sys::LSTM_META_TEXT, text.as_bytes()),
            Meta::Bytes(bytes) => (sys::LSTM_META_BYTES, bytes.as_slice()),
        };
        // SAFETY: exclusive access; C copies the bytes.
        check(unsafe {
            sys::lstm_network_set_meta(
                self.raw,
                key.as_ptr(),
                kind,
                bytes.as_ptr() as *const c_void,
                bytes.len(),
            )
        })
    }

    /// Removes a metadata entry; `NOT_FOUND` when there is none.
    pub fn remove_meta(&mut self, key: &str) -> Result<()> {
        let key = key_cstring(key)?;
        // SAFETY: exclusive access.
        check(unsafe { sys::lstm_network_remove_meta(self.raw, key.as_ptr()) })
    }

    /// Every metadata key, in the order of their bytes.
    pub fn meta_keys(&self) -> Vec<String> {
        // SAFETY: read-only.
        let count = unsafe { sys::lstm_network_meta_count(self.raw) };
        (0..count)
            .filter_map(|index| {
                let mut key: *const c_char = ptr::null();
                // SAFETY: index < count; the key is copied at once.
                let status = unsafe { sys::lstm_network_meta_key(self.raw, index, &mut key) };
                (status == sys::LSTM_OK && !key.is_null())
                    // SAFETY: C gives a NUL-terminated key.
                    .then(|| {
                        unsafe { CStr::from_ptr(key) }
                            .to_string_lossy()
                            .into_owned()
                    })
            })
            .collect()
    }
}

impl crate::sealed::Sealed for Network {}

impl Parameters for Network {
    fn binding_id(&self) -> u64 {
        self.id
    }
    unsafe fn bind_to(&mut self, optim: *mut sys::lstm_optim) -> std::os::raw::c_int {
        // SAFETY: the caller's contract; self.raw is a valid network.
        unsafe { sys::lstm_optim_add_network(optim, self.raw) }
    }
}
