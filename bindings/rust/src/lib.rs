//! Safe Rust bindings to liblstm, a C11 library that trains and runs LSTM
//! networks on the CPU.
//!
//! The raw C API is in [`sys`]; this module wraps it so that safe code can
//! neither pass the C library a buffer that is too short, nor use a handle
//! after it was freed, nor break the library's thread rules.
//!
//! * [`Model`]: configuration, parameters and accumulated gradients.
//! * [`Workspace`]: the scratch memory of forward passes and the activations
//!   a training forward keeps for backward. One per thread. It may keep the
//!   packed weights between inference calls ([`Workspace::keep_weights`]).
//! * [`State`]: the h and c of a batch of streams, run a step or a chunk at a
//!   time ([`State::keep_weights`] as well).
//! * [`Optimizer`]: SGD, Adagrad, RMSprop, Adam, AdamW over a [`Model`] or a
//!   [`ParamBuffer`] (for example an output layer).
//! * [`Precision`]: inference in bf16 or int8 ([`Workspace::set_precision`],
//!   [`State::set_precision`]) and quantized model files
//!   ([`Model::save_quantized`]), liblstm 0.7.0; training in bf16
//!   ([`Workspace::set_training_precision`]), liblstm 0.8.0.
//!
//! Tensors are `f32`, dense and row-major, in the layouts of the C headers:
//! `x` is `[T][B][I]` (or `[B][T][I]` with `batch_first`), `y` is
//! `[T][B][D·R]`, `h0`/`h_n` are `[L·D][B][R]`, `c0`/`c_n` `[L·D][B][H]`,
//! where D is 1 or 2 directions and R is `proj_size` if set, else H. One
//! call may lay out x and y (and, in training, dy and dx) the other way
//! round than its model's configuration: [`Input::layout`] with
//! [`Layout::TimeMajor`] or [`Layout::BatchMajor`].
//!
//! The crate calls liblstm 0.3.0's argument-struct sequence calls
//! (`lstm_model_infer`, `lstm_model_train_forward`,
//! `lstm_model_train_backward`, `lstm_model_infer_stream`,
//! `lstm_model_train_chunk`): [`Input`] fills `lstm_sequences` and
//! `lstm_inputs`, [`OutputBuffers`] `lstm_outputs`, [`OutputGrads`]
//! `lstm_output_grads` and [`InputGrads`] `lstm_input_grads`, field by
//! field. The build script refuses an older library.
//!
//! ```
//! use lstm::{Config, Input, Model, Workspace};
//! # fn main() -> lstm::Result<()> {
//! let mut model = Model::new(&Config::new(3, 8))?;
//! model.init(42, true)?;
//! let mut ws = Workspace::new(&model)?;
//! let x = vec![0.5f32; 5 * 2 * 3]; // T = 5, B = 2, I = 3
//! let out = model.forward(&mut ws, &Input::new(5, 2, &x))?;
//! assert_eq!(out.y.len(), 5 * 2 * 8);
//! # Ok(()) }
//! ```
//!
//! # Threads
//!
//! The C library's rules (lstm/model.h) are: a model that is only read
//! (inference and getters) may be shared by any number of threads, each with
//! its own workspace; calls that write a model (init, set, training) need
//! exclusive access; a workspace, a state and an optimizer belong to one
//! thread at a time. The Rust types encode this:
//!
//! * [`Model`] is `Send + Sync`. Every method that takes `&Model` only reads
//!   the model in C (forward inference, streaming, getters, saving, creating
//!   workspaces and states). Everything that writes it (init, set_params,
//!   training forward and backward, optimizer steps) takes `&mut Model`, so
//!   the borrow checker gives those calls the exclusive access C requires.
//! * [`Workspace`], [`State`] and [`Optimizer`] are `Send` (nothing in them is
//!   tied to the thread that made them) but not `Sync`: their C calls mutate
//!   them, and C allows one thread at a time.
//!
//! ```compile_fail,E0277
//! fn is_sync<T: Sync>() {}
//! is_sync::<lstm::Workspace>();
//! ```
//! ```compile_fail,E0277
//! fn is_sync<T: Sync>() {}
//! is_sync::<lstm::State>();
//! ```
//! ```compile_fail,E0277
//! fn is_sync<T: Sync>() {}
//! is_sync::<lstm::Optimizer>();
//! ```

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

#[allow(missing_docs)]
pub mod sys;

pub mod network;
pub use network::Network;

use std::ffi::{CStr, CString};
use std::fmt;
use std::os::raw::{c_int, c_void};
use std::path::Path;
use std::ptr;
use std::sync::atomic::{AtomicU64, Ordering};

/* ------------------------------------------------------------------------ */
/* Errors                                                                    */
/* ------------------------------------------------------------------------ */

/// The C library's status codes (`lstm_status`), as found in [`Error::status`].
pub mod status {
    /// Success (never in an [`Error`](crate::Error)).
    pub const OK: i32 = 0;
    /// A required pointer argument is NULL.
    pub const NULL: i32 = 1;
    /// A size is zero or above its documented limit.
    pub const SIZE: i32 = 2;
    /// A product of sizes overflows.
    pub const OVERFLOW: i32 = 3;
    /// Shapes or buffer lengths disagree.
    pub const SHAPE: i32 = 4;
    /// An argument value is invalid.
    pub const ARG: i32 = 5;
    /// An input holds NaN or infinity.
    pub const NONFINITE: i32 = 6;
    /// Memory allocation failed.
    pub const NOMEM: i32 = 7;
    /// The call is out of order (for example backward without a training forward).
    pub const STATE: i32 = 8;
    /// Reading or writing a file failed.
    pub const IO: i32 = 9;
    /// A model file or buffer is truncated, corrupted or not a model file.
    pub const FORMAT: i32 = 10;
    /// A model file needs a feature this version does not have.
    pub const UNSUPPORTED: i32 = 11;
    /// What was asked for (a metadata key) is not there.
    pub const NOT_FOUND: i32 = 12;
}

/// A failed call: the C status code and the detail message.
///
/// Errors found by the C library carry its per-thread detail message
/// (`lstm_error_message()`), read on the calling thread right after the
/// call. Errors found by these bindings before calling C (short slices, for
/// example) use the same status codes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    /// One of the codes in [`status`].
    pub status: i32,
    /// What went wrong, naming the offending argument; may be empty.
    pub message: String,
}

impl Error {
    fn new(status: i32, message: impl Into<String>) -> Error {
        Error {
            status,
            message: message.into(),
        }
    }

    /// The error of a C call that just failed on this thread.
    fn last(status: c_int) -> Error {
        // SAFETY: never NULL; valid until the next failing call on this
        // thread, and we copy it at once.
        let message = unsafe { CStr::from_ptr(sys::lstm_error_message()) };
        Error {
            status,
            message: message.to_string_lossy().into_owned(),
        }
    }

    /// The library's static text for the status (`lstm_strerror()`).
    pub fn text(&self) -> &'static str {
        // SAFETY: lstm_strerror returns static text, never NULL, for any value.
        let text = unsafe { CStr::from_ptr(sys::lstm_strerror(self.status)) };
        text.to_str().unwrap_or("unknown status")
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.message.is_empty() {
            write!(f, "{}", self.text())
        } else {
            write!(f, "{}: {}", self.text(), self.message)
        }
    }
}

impl std::error::Error for Error {}

/// `std::result::Result` with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

fn check(status: c_int) -> Result<()> {
    if status == sys::LSTM_OK {
        Ok(())
    } else {
        Err(Error::last(status))
    }
}

/// The version of the library actually loaded, "MAJOR.MINOR.PATCH".
pub fn version() -> &'static str {
    // SAFETY: static text, never NULL.
    let text = unsafe { CStr::from_ptr(sys::lstm_version_string()) };
    text.to_str().unwrap_or("")
}

/// The version of the library actually loaded, as MAJOR·10000 + MINOR·100 + PATCH.
pub fn version_number() -> u32 {
    // SAFETY: no arguments, never fails.
    unsafe { sys::lstm_version_number() }
}

/* ------------------------------------------------------------------------ */
/* Shape checks                                                              */
/* ------------------------------------------------------------------------ */

/// The product of named sizes, or E_OVERFLOW.
fn product(name: &str, factors: &[(&str, usize)]) -> Result<usize> {
    let mut total: usize = 1;
    for &(_, n) in factors {
        total = match total.checked_mul(n) {
            Some(t) => t,
            None => {
                return Err(Error::new(
                    status::OVERFLOW,
                    format!(
                        "the length of {} ({}) overflows usize",
                        name,
                        describe(factors)
                    ),
                ))
            }
        };
    }
    Ok(total)
}

fn describe(factors: &[(&str, usize)]) -> String {
    let parts: Vec<String> = factors
        .iter()
        .map(|(n, v)| format!("{} {}", n, v))
        .collect();
    parts.join(" x ")
}

/// E_SHAPE unless a slice has exactly the length its shape gives.
fn check_len(name: &str, got: usize, factors: &[(&str, usize)]) -> Result<()> {
    let want = product(name, factors)?;
    if got == want {
        Ok(())
    } else {
        Err(Error::new(
            status::SHAPE,
            format!(
                "{} has {} values; its shape ({}) needs {}",
                name,
                got,
                describe(factors),
                want
            ),
        ))
    }
}

fn check_opt(name: &str, slice: Option<usize>, factors: &[(&str, usize)]) -> Result<()> {
    match slice {
        Some(len) => check_len(name, len, factors),
        None => Ok(()),
    }
}

/// A zeroed vector, or E_NOMEM instead of aborting when memory runs out.
fn zeros(n: usize) -> Result<Vec<f32>> {
    let mut v = Vec::new();
    if v.try_reserve_exact(n).is_err() {
        return Err(Error::new(
            status::NOMEM,
            format!("allocating {} floats", n),
        ));
    }
    v.resize(n, 0.0);
    Ok(v)
}

fn ptr_of(slice: Option<&[f32]>) -> *const f32 {
    slice.map_or(ptr::null(), |s| s.as_ptr())
}

fn mut_ptr_of(slice: &mut Option<&mut [f32]>) -> *mut f32 {
    match slice {
        Some(s) => s.as_mut_ptr(),
        None => ptr::null_mut(),
    }
}

fn len_of<T>(slice: &Option<&mut [T]>) -> Option<usize> {
    slice.as_ref().map(|s| s.len())
}

fn path_to_cstring(path: &Path) -> Result<CString> {
    #[cfg(unix)]
    let bytes = {
        use std::os::unix::ffi::OsStrExt;
        path.as_os_str().as_bytes().to_vec()
    };
    #[cfg(not(unix))]
    let bytes = match path.to_str() {
        Some(s) => s.as_bytes().to_vec(),
        None => return Err(Error::new(status::ARG, "the path is not valid UTF-8")),
    };
    CString::new(bytes).map_err(|_| Error::new(status::ARG, "the path contains a NUL byte"))
}

/// Every model and parameter buffer gets an identity that is never reused,
/// unlike its address: optimizers and workspaces use it to recognise the
/// object they were bound to.
/// A model file's bytes from a C save-to-buffer call: the size first
/// (NULL buffer), then the bytes into a vector of that size.
fn saved_bytes(save: impl Fn(*mut c_void, usize, &mut usize) -> c_int) -> Result<Vec<u8>> {
    let mut size = 0;
    check(save(ptr::null_mut(), 0, &mut size))?;
    let mut bytes = Vec::new();
    if bytes.try_reserve_exact(size).is_err() {
        return Err(Error::new(
            status::NOMEM,
            format!("allocating {} bytes", size),
        ));
    }
    bytes.resize(size, 0u8);
    check(save(
        bytes.as_mut_ptr() as *mut c_void,
        bytes.len(),
        &mut size,
    ))?;
    bytes.truncate(size);
    Ok(bytes)
}

fn next_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/* ------------------------------------------------------------------------ */
/* Configuration                                                             */
/* ------------------------------------------------------------------------ */

/// The configuration of a model (`lstm_config`).
///
/// Build it with [`Config::new`] and the chained setters, which share the
/// fields' names:
///
/// ```
/// let config = lstm::Config::new(3, 16).num_layers(2).bidirectional(true).dropout(0.1);
/// assert_eq!(config.num_layers, 2);
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Config {
    /// I: features per step.
    pub input_size: usize,
    /// H: hidden units.
    pub hidden_size: usize,
    /// L: stacked layers (0 means 1).
    pub num_layers: usize,
    /// Every layer also runs in reverse (D = 2).
    pub bidirectional: bool,
    /// x, y, dx and dy are `[B][T][...]` instead of `[T][B][...]`.
    pub batch_first: bool,
    /// P: projection size (LSTMP), 0 for none, else below H.
    pub proj_size: usize,
    /// Peephole connections (oneDNN, TensorFlow).
    pub peephole: bool,
    /// Inter-layer dropout probability in training, in [0, 1).
    pub dropout: f64,
}

impl Config {
    /// One unidirectional layer, time-major, no projection, no peepholes.
    pub fn new(input_size: usize, hidden_size: usize) -> Config {
        Config {
            input_size,
            hidden_size,
            num_layers: 1,
            bidirectional: false,
            batch_first: false,
            proj_size: 0,
            peephole: false,
            dropout: 0.0,
        }
    }

    /// Sets `input_size`.
    pub fn input_size(mut self, input_size: usize) -> Config {
        self.input_size = input_size;
        self
    }
    /// Sets `hidden_size`.
    pub fn hidden_size(mut self, hidden_size: usize) -> Config {
        self.hidden_size = hidden_size;
        self
    }
    /// Sets `num_layers`.
    pub fn num_layers(mut self, num_layers: usize) -> Config {
        self.num_layers = num_layers;
        self
    }
    /// Sets `bidirectional`.
    pub fn bidirectional(mut self, bidirectional: bool) -> Config {
        self.bidirectional = bidirectional;
        self
    }
    /// Sets `batch_first`.
    pub fn batch_first(mut self, batch_first: bool) -> Config {
        self.batch_first = batch_first;
        self
    }
    /// Sets `proj_size`.
    pub fn proj_size(mut self, proj_size: usize) -> Config {
        self.proj_size = proj_size;
        self
    }
    /// Sets `peephole`.
    pub fn peephole(mut self, peephole: bool) -> Config {
        self.peephole = peephole;
        self
    }
    /// Sets `dropout`.
    pub fn dropout(mut self, dropout: f64) -> Config {
        self.dropout = dropout;
        self
    }

    /// D: 2 when bidirectional, else 1.
    pub fn directions(&self) -> usize {
        if self.bidirectional {
            2
        } else {
            1
        }
    }

    /// R: the size of h, `proj_size` with a projection, else `hidden_size`.
    pub fn state_size(&self) -> usize {
        if self.proj_size > 0 {
            self.proj_size
        } else {
            self.hidden_size
        }
    }

    /// D·R: the features of y per step and sequence.
    pub fn output_size(&self) -> usize {
        self.directions().saturating_mul(self.state_size())
    }

    fn layers(&self) -> usize {
        self.num_layers.max(1)
    }

    fn to_raw(&self) -> sys::lstm_config {
        let mut raw = sys::lstm_config::default();
        // SAFETY: raw is a valid lstm_config of the size we pass.
        let status =
            unsafe { sys::lstm_config_init(&mut raw, std::mem::size_of::<sys::lstm_config>()) };
        debug_assert_eq!(status, sys::LSTM_OK);
        raw.input_size = self.input_size;
        raw.hidden_size = self.hidden_size;
        raw.num_layers = self.num_layers;
        raw.flags = (if self.bidirectional {
            sys::LSTM_BIDIRECTIONAL
        } else {
            0
        }) | (if self.batch_first {
            sys::LSTM_BATCH_FIRST
        } else {
            0
        }) | (if self.peephole { sys::LSTM_PEEPHOLE } else { 0 });
        raw.proj_size = self.proj_size;
        raw.dropout = self.dropout;
        raw
    }

    fn from_raw(raw: &sys::lstm_config) -> Config {
        Config {
            input_size: raw.input_size,
            hidden_size: raw.hidden_size,
            num_layers: raw.num_layers.max(1),
            bidirectional: raw.flags & sys::LSTM_BIDIRECTIONAL != 0,
            batch_first: raw.flags & sys::LSTM_BATCH_FIRST != 0,
            proj_size: raw.proj_size,
            peephole: raw.flags & sys::LSTM_PEEPHOLE != 0,
            dropout: raw.dropout,
        }
    }
}

/// A named tensor of one layer and direction, for [`Model::tensor`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TensorKind {
    /// W, 4H × (R + I_l): gate blocks i, f, g, o; columns `[h_{t-1} | x_t]`.
    Weight,
    /// b, 4H × 1.
    Bias,
    /// W_hr, P × H (models with a projection only).
    Projection,
    /// `[p_i; p_f; p_o]`, 3 × H (peephole models only).
    Peephole,
}

impl TensorKind {
    fn raw(self) -> sys::lstm_tensor {
        match self {
            TensorKind::Weight => sys::LSTM_TENSOR_WEIGHT,
            TensorKind::Bias => sys::LSTM_TENSOR_BIAS,
            TensorKind::Projection => sys::LSTM_TENSOR_PROJECTION,
            TensorKind::Peephole => sys::LSTM_TENSOR_PEEPHOLE,
        }
    }
}

/// What a workspace is sized for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Inference ([`Model::forward`]).
    Infer,
    /// Training ([`Model::forward_train`] and [`Model::backward`]).
    Train,
}

impl Mode {
    fn raw(self) -> sys::lstm_mode {
        match self {
            Mode::Infer => sys::LSTM_MODE_INFER,
            Mode::Train => sys::LSTM_MODE_TRAIN,
        }
    }
}

/// How one call lays out x and y, and in training dy and dx
/// (`lstm_sequences.layout`); h and c are `[L·D][B][..]` in every layout.
///
/// ```
/// # let x = vec![0f32; 24];
/// // x is [B = 2][T = 4][I = 3], whatever the model's batch_first says
/// let input = lstm::Input::new(4, 2, &x).layout(lstm::Layout::BatchMajor);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Layout {
    /// The model's configuration: `[B][T][..]` with `batch_first`, else
    /// `[T][B][..]` (the default).
    #[default]
    Model,
    /// `[T][B][..]`, whatever the configuration.
    TimeMajor,
    /// `[B][T][..]`, whatever the configuration.
    BatchMajor,
}

impl Layout {
    fn raw(self) -> sys::lstm_layout {
        match self {
            Layout::Model => sys::LSTM_LAYOUT_MODEL,
            Layout::TimeMajor => sys::LSTM_LAYOUT_TIME_MAJOR,
            Layout::BatchMajor => sys::LSTM_LAYOUT_BATCH_MAJOR,
        }
    }
}

/// The arithmetic of the matrix products (`lstm_precision`, liblstm
/// 0.7.0): of inference, set on a [`Workspace`] ([`Workspace::set_precision`])
/// or a [`State`] ([`State::set_precision`]), the precision of a quantized
/// model file ([`Model::save_quantized`]), and of training, `Fp32` or
/// `Bf16` ([`Workspace::set_training_precision`], liblstm 0.8.0).
///
/// In every precision the cells, states, biases and each product's sums
/// stay `f32`; only the products' operands change.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Precision {
    /// `f32`, the default: what earlier releases computed, bit for bit.
    #[default]
    Fp32,
    /// bfloat16 weights and inputs of the products, sums in `f32`.
    Bf16,
    /// int8 weights with one scale per row, each product's input
    /// quantized to uint8 per row at every step, sums exact in `i32`.
    Int8,
}

impl Precision {
    fn raw(self) -> sys::lstm_precision {
        match self {
            Precision::Fp32 => sys::LSTM_PRECISION_FP32,
            Precision::Bf16 => sys::LSTM_PRECISION_BF16,
            Precision::Int8 => sys::LSTM_PRECISION_INT8,
        }
    }
}

/// Whether a model file's first bytes are the header of a quantized file
/// (format 1.2 or later: `LSTMFILE`, major 1, minor >= 2).
fn quantized_header(header: &[u8]) -> bool {
    header.len() >= 12
        && &header[..8] == b"LSTMFILE"
        && u16::from_le_bytes([header[8], header[9]]) == 1
        && u16::from_le_bytes([header[10], header[11]]) >= 2
}

/// [`quantized_header`] of a file's first bytes; false when they cannot be read.
fn quantized_file(path: &Path) -> bool {
    use std::io::Read;
    let mut header = [0u8; 12];
    std::fs::File::open(path)
        .and_then(|mut file| file.read_exact(&mut header))
        .map_or(false, |_| quantized_header(&header))
}

/* ------------------------------------------------------------------------ */
/* Forward and backward arguments                                            */
/* ------------------------------------------------------------------------ */

/// The inputs of a forward pass: what C's `lstm_sequences` (`seq_len`,
/// `batch`, `layout`, `lengths`) and `lstm_inputs` (`x`, `h0`, `c0`) hold.
///
/// ```
/// # let (x, lengths, h0) = (vec![0f32; 24], vec![4usize, 2], vec![0f32; 16]);
/// let input = lstm::Input::new(4, 2, &x).lengths(&lengths).h0(&h0);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Input<'a> {
    /// T, the number of steps (of the longest sequence).
    pub seq_len: usize,
    /// B, the number of sequences.
    pub batch: usize,
    /// `[T][B][I]` or `[B][T][I]`, as `layout` says; padding is never read.
    pub x: &'a [f32],
    /// B lengths in 1..=T, or `None` when every sequence has T steps.
    pub lengths: Option<&'a [usize]>,
    /// Initial h, `[L·D][B][R]`, or `None` for zeros.
    pub h0: Option<&'a [f32]>,
    /// Initial c, `[L·D][B][H]`, or `None` for zeros.
    pub c0: Option<&'a [f32]>,
    /// The layout of x and y (and of dy and dx in the backward that
    /// follows a training forward): the model's by default.
    pub layout: Layout,
}

impl<'a> Input<'a> {
    /// T steps of B sequences, zero initial states, every sequence T long.
    pub fn new(seq_len: usize, batch: usize, x: &'a [f32]) -> Input<'a> {
        Input {
            seq_len,
            batch,
            x,
            lengths: None,
            h0: None,
            c0: None,
            layout: Layout::Model,
        }
    }
    /// Sets the sequence lengths.
    pub fn lengths(mut self, lengths: &'a [usize]) -> Input<'a> {
        self.lengths = Some(lengths);
        self
    }
    /// Sets the initial h.
    pub fn h0(mut self, h0: &'a [f32]) -> Input<'a> {
        self.h0 = Some(h0);
        self
    }
    /// Sets the initial c.
    pub fn c0(mut self, c0: &'a [f32]) -> Input<'a> {
        self.c0 = Some(c0);
        self
    }
    /// Sets the layout of this call.
    pub fn layout(mut self, layout: Layout) -> Input<'a> {
        self.layout = layout;
        self
    }

    /// C's `lstm_sequences` of this input; it points into `self.lengths`.
    fn raw_sequences(&self) -> sys::lstm_sequences {
        sys::lstm_sequences {
            steps: self.seq_len,
            batch: self.batch,
            layout: self.layout.raw(),
            lengths: self.lengths.map_or(ptr::null(), |l| l.as_ptr()),
            ..sys::LSTM_SEQUENCES_INIT
        }
    }

    /// C's `lstm_inputs` of this input; it points into the slices.
    fn raw_inputs(&self) -> sys::lstm_inputs {
        sys::lstm_inputs {
            x: self.x.as_ptr(),
            h0: ptr_of(self.h0),
            c0: ptr_of(self.c0),
            ..sys::LSTM_INPUTS_INIT
        }
    }
}

/// Caller-owned output buffers of a forward pass (C's `lstm_outputs`: `y`,
/// `hT`, `cT`); `None` skips an output.
#[derive(Debug, Default)]
pub struct OutputBuffers<'a> {
    /// `[T][B][D·R]` (or `[B][T][D·R]`, as the input's layout says); zero
    /// past each sequence's end.
    pub y: Option<&'a mut [f32]>,
    /// Final h, `[L·D][B][R]`, from each sequence's own last step.
    pub h_n: Option<&'a mut [f32]>,
    /// Final c, `[L·D][B][H]`.
    pub c_n: Option<&'a mut [f32]>,
}

impl OutputBuffers<'_> {
    /// C's `lstm_outputs`, pointing into the buffers.
    fn raw(&mut self) -> sys::lstm_outputs {
        sys::lstm_outputs {
            y: mut_ptr_of(&mut self.y),
            h_t: mut_ptr_of(&mut self.h_n),
            c_t: mut_ptr_of(&mut self.c_n),
            ..sys::LSTM_OUTPUTS_INIT
        }
    }
}

/// The outputs of a forward pass, allocated by [`Model::forward`].
#[derive(Clone, Debug, PartialEq)]
pub struct Outputs {
    /// `[T][B][D·R]` (or `[B][T][D·R]`, as the input's layout says).
    pub y: Vec<f32>,
    /// `[L·D][B][R]`.
    pub h_n: Vec<f32>,
    /// `[L·D][B][H]`.
    pub c_n: Vec<f32>,
}

/// Gradients of the loss with respect to a training forward's outputs
/// (C's `lstm_output_grads`: `dy`, `dhT`, `dcT`); `None` means zeros.
#[derive(Clone, Copy, Debug, Default)]
pub struct OutputGrads<'a> {
    /// dL/dy, shaped and laid out as that forward's y.
    pub dy: Option<&'a [f32]>,
    /// dL/dh_n, shaped as h_n.
    pub dh_n: Option<&'a [f32]>,
    /// dL/dc_n, shaped as c_n.
    pub dc_n: Option<&'a [f32]>,
}

impl OutputGrads<'_> {
    /// C's `lstm_output_grads`, pointing into the slices.
    fn raw(&self) -> sys::lstm_output_grads {
        sys::lstm_output_grads {
            dy: ptr_of(self.dy),
            dh_t: ptr_of(self.dh_n),
            dc_t: ptr_of(self.dc_n),
            ..sys::LSTM_OUTPUT_GRADS_INIT
        }
    }
}

/// Buffers that receive the gradients with respect to a training forward's
/// inputs (C's `lstm_input_grads`: `dx`, `dh0`, `dc0`); `None` skips one
/// (skipping dx saves work).
#[derive(Debug, Default)]
pub struct InputGrads<'a> {
    /// dL/dx, shaped and laid out as that forward's x; zero in the padding.
    pub dx: Option<&'a mut [f32]>,
    /// dL/dh0, shaped as h0.
    pub dh0: Option<&'a mut [f32]>,
    /// dL/dc0, shaped as c0.
    pub dc0: Option<&'a mut [f32]>,
}

impl InputGrads<'_> {
    /// C's `lstm_input_grads`, pointing into the buffers.
    fn raw(&mut self) -> sys::lstm_input_grads {
        sys::lstm_input_grads {
            dx: mut_ptr_of(&mut self.dx),
            dh0: mut_ptr_of(&mut self.dh0),
            dc0: mut_ptr_of(&mut self.dc0),
            ..sys::LSTM_INPUT_GRADS_INIT
        }
    }
}

/* ------------------------------------------------------------------------ */
/* Model                                                                     */
/* ------------------------------------------------------------------------ */

/// An LSTM network: configuration, parameters and accumulated gradients
/// (`lstm_model`). Freed on drop.
pub struct Model {
    raw: *mut sys::lstm_model,
    /* The parameter and gradient buffers, owned by the C model, which keeps
     * them at the same address until lstm_model_destroy(). params is null
     * in a model loaded from a quantized file until it is first needed
     * writable (materialize()): lstm_model_params() tells C that the
     * parameters may change, which drops the weights the model keeps as
     * the file stored them; until then params() reads `shadow`, a copy. */
    params: *mut f32,
    shadow: Option<Box<[f32]>>,
    grads: *mut f32,
    count: usize,
    config: Config,
    id: u64,
}

// SAFETY: a C model is plain heap memory with no tie to the thread that
// created it, so it may move between threads.
unsafe impl Send for Model {}
// SAFETY: C lets any number of threads read one model at once (inference,
// getters, streaming, saving). Every `&self` method of Model and every
// function taking `&Model` makes only such read-only calls; everything that
// writes the model or its buffers (init, set_params, params_mut, grads_mut,
// zero_grads, training, optimizer steps) takes `&mut Model`.
unsafe impl Sync for Model {}

impl fmt::Debug for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Model")
            .field("config", &self.config)
            .field("param_count", &self.count)
            .finish()
    }
}

impl Drop for Model {
    fn drop(&mut self) {
        // SAFETY: we own raw; nothing else frees it.
        unsafe { sys::lstm_model_destroy(self.raw) }
    }
}

impl Model {
    /// Wraps a model just created by C; destroys it on failure. With
    /// `stored` (a model loaded from a quantized file) the parameter view
    /// is not taken yet: see the `params` field.
    fn from_raw(raw: *mut sys::lstm_model, stored: bool) -> Result<Model> {
        let mut config = sys::lstm_config {
            struct_size: std::mem::size_of::<sys::lstm_config>(),
            ..Default::default()
        };
        let mut params = ptr::null_mut();
        let mut grads = ptr::null_mut();
        let mut count = 0;
        let mut grad_count = 0;
        // SAFETY: raw is a valid model we own exclusively; the out pointers
        // are valid.
        let status = unsafe {
            let mut status = sys::lstm_model_get_config(raw, &mut config);
            if status == sys::LSTM_OK && !stored {
                status = sys::lstm_model_params(raw, &mut params, &mut count);
            }
            if status == sys::LSTM_OK {
                status = sys::lstm_model_grads(raw, &mut grads, &mut grad_count);
            }
            if stored {
                count = grad_count;
            }
            status
        };
        if status != sys::LSTM_OK || count != grad_count {
            let error = if status != sys::LSTM_OK {
                Error::last(status)
            } else {
                Error::new(status::STATE, "the gradient and parameter counts differ")
            };
            // SAFETY: we still own raw.
            unsafe { sys::lstm_model_destroy(raw) };
            return Err(error);
        }
        let mut shadow = None;
        if stored {
            let mut copy = vec![0f32; count].into_boxed_slice();
            // SAFETY: copy holds count floats; raw is a valid model.
            let status = unsafe { sys::lstm_model_get_params(raw, copy.as_mut_ptr(), count) };
            if status != sys::LSTM_OK {
                let error = Error::last(status);
                // SAFETY: we still own raw.
                unsafe { sys::lstm_model_destroy(raw) };
                return Err(error);
            }
            shadow = Some(copy);
        }
        Ok(Model {
            raw,
            params,
            shadow,
            grads,
            count,
            config: Config::from_raw(&config),
            id: next_id(),
        })
    }

    /// Takes the writable parameter view if it was not taken yet (a model
    /// loaded from a quantized file), before anything may change the
    /// parameters. Returns the view.
    fn materialize(&mut self) -> *mut f32 {
        let (mut data, mut count) = (ptr::null_mut(), 0);
        /* Taking the view tells C that the parameters may change (a new
         * generation for kept and stored weights); its pointer and count
         * never change, so the call cannot fail. */
        // SAFETY: exclusive access through &mut self; valid out pointers.
        let status = unsafe { sys::lstm_model_params(self.raw, &mut data, &mut count) };
        assert!(status == sys::LSTM_OK && count == self.count);
        debug_assert!(self.params.is_null() || data == self.params);
        self.params = data;
        self.shadow = None;
        data
    }

    /// Where params() reads.
    fn params_ptr(&self) -> *const f32 {
        match &self.shadow {
            Some(copy) => copy.as_ptr(),
            None => self.params,
        }
    }

    /// Creates a model with every parameter and gradient at zero; give it
    /// weights with [`Model::init`] or [`Model::set_params`].
    ///
    /// Errors: `SIZE` for a size of 0 or above the limits, `ARG` for a bad
    /// projection or dropout, `OVERFLOW`, `NOMEM`.
    pub fn new(config: &Config) -> Result<Model> {
        let raw_config = config.to_raw();
        let mut raw = ptr::null_mut();
        // SAFETY: raw_config is a valid lstm_config; raw is a valid out pointer.
        check(unsafe { sys::lstm_model_create(&raw_config, &mut raw) })?;
        Model::from_raw(raw, false)
    }

    /// Loads a model from a model file. Every byte is checked first: a bad
    /// file gives `FORMAT` (or `UNSUPPORTED`), `IO` when it cannot be read.
    ///
    /// A quantized file ([`Model::save_quantized`]) loads too: run in its
    /// precision, the model gives the bits of the model that was saved (its
    /// weights as the file stores them), until its parameters change
    /// ([`Model::params_mut`], [`Model::set_params`], [`Model::init`], an
    /// optimizer); in the other precisions it runs their `f32` values.
    pub fn load<P: AsRef<Path>>(path: P) -> Result<Model> {
        let stored = quantized_file(path.as_ref());
        let path = path_to_cstring(path.as_ref())?;
        let mut raw = ptr::null_mut();
        // SAFETY: path is NUL-terminated; raw is a valid out pointer.
        check(unsafe { sys::lstm_model_load(path.as_ptr(), &mut raw) })?;
        Model::from_raw(raw, stored)
    }

    /// Loads a model from a model file's bytes (see [`Model::save_to_vec`]).
    pub fn load_from_slice(bytes: &[u8]) -> Result<Model> {
        let mut raw = ptr::null_mut();
        // SAFETY: bytes is valid for bytes.len() bytes; raw is a valid out pointer.
        check(unsafe {
            sys::lstm_model_load_buffer(bytes.as_ptr() as *const c_void, bytes.len(), &mut raw)
        })?;
        Model::from_raw(raw, quantized_header(bytes))
    }

    /// A new model with the same configuration, parameters and gradients.
    pub fn try_clone(&self) -> Result<Model> {
        let mut copy = Model::new(&self.config)?;
        copy.params_mut().copy_from_slice(self.params());
        copy.grads_mut().copy_from_slice(self.grads());
        Ok(copy)
    }

    /// The configuration (with `num_layers` 0 read back as 1).
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The number of `f32` parameters (and gradients).
    pub fn param_count(&self) -> usize {
        self.count
    }

    /// The parameter buffer (layout in lstm/model.h; see [`Model::tensor`]).
    pub fn params(&self) -> &[f32] {
        // SAFETY: the C model owns count floats at params for its whole life;
        // they are written only through &mut self (which takes the view
        // before any write, dropping the shadow copy).
        unsafe { std::slice::from_raw_parts(self.params_ptr(), self.count) }
    }

    /// The parameter buffer, writable. Values written here are not checked
    /// (unlike [`Model::set_params`]). Workspaces and states that keep the
    /// packed weights ([`Workspace::keep_weights`]) pack them again at their
    /// next call, since the slice borrows the model until then.
    pub fn params_mut(&mut self) -> &mut [f32] {
        /* Taking the view again tells C that the parameters may change (a
         * new generation for kept weights). */
        let params = self.materialize();
        // SAFETY: as in params(), and &mut self makes this the only view.
        unsafe { std::slice::from_raw_parts_mut(params, self.count) }
    }

    /// The accumulated gradients, in the parameters' layout.
    pub fn grads(&self) -> &[f32] {
        // SAFETY: as in params().
        unsafe { std::slice::from_raw_parts(self.grads, self.count) }
    }

    /// The accumulated gradients, writable.
    pub fn grads_mut(&mut self) -> &mut [f32] {
        // SAFETY: as in params_mut().
        unsafe { std::slice::from_raw_parts_mut(self.grads, self.count) }
    }

    /// Both buffers at once: the parameters to read, the gradients to write.
    pub fn params_and_grads_mut(&mut self) -> (&[f32], &mut [f32]) {
        // SAFETY: two distinct C buffers; &mut self makes the gradient view unique.
        unsafe {
            (
                std::slice::from_raw_parts(self.params_ptr(), self.count),
                std::slice::from_raw_parts_mut(self.grads, self.count),
            )
        }
    }

    /// Copies the parameters into `dst`, which must hold `param_count()` values.
    pub fn get_params(&self, dst: &mut [f32]) -> Result<()> {
        check_len("dst", dst.len(), &[("param_count", self.count)])?;
        // SAFETY: dst holds count floats.
        check(unsafe { sys::lstm_model_get_params(self.raw, dst.as_mut_ptr(), dst.len()) })
    }

    /// Replaces every parameter, all or nothing: `src` must hold
    /// `param_count()` finite values (`SHAPE`, `NONFINITE`).
    pub fn set_params(&mut self, src: &[f32]) -> Result<()> {
        check_len("src", src.len(), &[("param_count", self.count)])?;
        self.materialize();
        // SAFETY: src holds count floats; &mut self gives exclusive access.
        check(unsafe { sys::lstm_model_set_params(self.raw, src.as_ptr(), src.len()) })
    }

    /// Copies the gradients into `dst`, which must hold `param_count()` values.
    pub fn get_grads(&self, dst: &mut [f32]) -> Result<()> {
        check_len("dst", dst.len(), &[("param_count", self.count)])?;
        // SAFETY: dst holds count floats.
        check(unsafe { sys::lstm_model_get_grads(self.raw, dst.as_mut_ptr(), dst.len()) })
    }

    /// Sets every accumulated gradient to zero.
    pub fn zero_grads(&mut self) -> Result<()> {
        // SAFETY: exclusive access through &mut self.
        check(unsafe { sys::lstm_model_zero_grads(self.raw) })
    }

    /// Initialises the parameters as PyTorch does, U(±1/√H), from the
    /// library's own seeded generator (the same on every platform); with
    /// `forget_bias_one`, every forget-gate bias is 1.
    pub fn init(&mut self, seed: u64, forget_bias_one: bool) -> Result<()> {
        let flags = if forget_bias_one {
            sys::LSTM_INIT_FORGET_BIAS_ONE
        } else {
            0
        };
        self.materialize();
        // SAFETY: exclusive access through &mut self.
        check(unsafe { sys::lstm_model_init(self.raw, seed, flags) })
    }

    /// Where a tensor lives in the parameter (and gradient) buffer:
    /// `(offset, rows, cols)`, row-major. `ARG` for a layer, direction or
    /// tensor the model does not have.
    pub fn tensor(
        &self,
        layer: usize,
        direction: usize,
        kind: TensorKind,
    ) -> Result<(usize, usize, usize)> {
        let (mut offset, mut rows, mut cols) = (0, 0, 0);
        // SAFETY: read-only call with valid out pointers.
        check(unsafe {
            sys::lstm_model_tensor(
                self.raw,
                layer,
                direction,
                kind.raw(),
                &mut offset,
                &mut rows,
                &mut cols,
            )
        })?;
        Ok((offset, rows, cols))
    }

    /// Bytes a workspace needs for a call of this mode and shape.
    pub fn workspace_size(&self, mode: Mode, seq_len: usize, batch: usize) -> Result<usize> {
        let mut bytes = 0;
        // SAFETY: read-only call with a valid out pointer.
        check(unsafe {
            sys::lstm_workspace_size(self.raw, mode.raw(), seq_len, batch, &mut bytes)
        })?;
        Ok(bytes)
    }

    /* ---- shape checks, all before any call into C ---- */

    /* The shapes of the tensors in lstm/model.h, as named factors, in the
     * time-major order; a call's layout permutes T and B, which changes no
     * length. */

    fn x_shape(&self, seq_len: usize, batch: usize) -> [(&'static str, usize); 3] {
        [
            ("seq_len", seq_len),
            ("batch", batch),
            ("input_size", self.config.input_size),
        ]
    }

    fn y_shape(&self, seq_len: usize, batch: usize) -> [(&'static str, usize); 4] {
        let c = &self.config;
        [
            ("seq_len", seq_len),
            ("batch", batch),
            ("directions", c.directions()),
            ("state size", c.state_size()),
        ]
    }

    fn h_shape(&self, batch: usize) -> [(&'static str, usize); 4] {
        let c = &self.config;
        [
            ("num_layers", c.layers()),
            ("directions", c.directions()),
            ("batch", batch),
            ("state size", c.state_size()),
        ]
    }

    fn c_shape(&self, batch: usize) -> [(&'static str, usize); 4] {
        let c = &self.config;
        [
            ("num_layers", c.layers()),
            ("directions", c.directions()),
            ("batch", batch),
            ("hidden_size", c.hidden_size),
        ]
    }

    fn check_input(&self, input: &Input<'_>) -> Result<()> {
        let (t, b) = (input.seq_len, input.batch);
        check_len("x", input.x.len(), &self.x_shape(t, b))?;
        if let Some(lengths) = input.lengths {
            check_len("lengths", lengths.len(), &[("batch", b)])?;
            /* C checks these too; checking here as well keeps the slice
             * bounds this crate promises independent of C's check order. */
            for (k, &n) in lengths.iter().enumerate() {
                if n == 0 || n > t {
                    return Err(Error::new(
                        status::ARG,
                        format!("lengths[{}] is {}; it must be in 1 ..= seq_len {}", k, n, t),
                    ));
                }
            }
        }
        check_opt("h0", input.h0.map(|s| s.len()), &self.h_shape(b))?;
        check_opt("c0", input.c0.map(|s| s.len()), &self.c_shape(b))
    }

    fn check_outputs(&self, t: usize, b: usize, out: &OutputBuffers<'_>) -> Result<()> {
        check_opt("y", len_of(&out.y), &self.y_shape(t, b))?;
        check_opt("h_n", len_of(&out.h_n), &self.h_shape(b))?;
        check_opt("c_n", len_of(&out.c_n), &self.c_shape(b))
    }

    fn allocate_outputs(&self, input: &Input<'_>) -> Result<Outputs> {
        Ok(Outputs {
            y: zeros(product("y", &self.y_shape(input.seq_len, input.batch))?)?,
            h_n: zeros(product("h_n", &self.h_shape(input.batch))?)?,
            c_n: zeros(product("c_n", &self.c_shape(input.batch))?)?,
        })
    }

    /// Runs `lstm_model_infer` or `lstm_model_train_forward` after the checks.
    fn forward_raw(
        &self,
        ws: &mut Workspace,
        input: &Input<'_>,
        mut out: OutputBuffers<'_>,
        train: bool,
    ) -> Result<()> {
        self.check_input(input)?;
        self.check_outputs(input.seq_len, input.batch, &out)?;
        let f = if train {
            sys::lstm_model_train_forward
        } else {
            sys::lstm_model_infer
        };
        let sequences = input.raw_sequences();
        let inputs = input.raw_inputs();
        let outputs = out.raw();
        /* Any forward call ends the training state the workspace held. */
        ws.trained = None;
        ws.network = None;
        // SAFETY: the structs point into slices that were checked above
        // against the lengths C reads and writes, and that outlive the call;
        // the model is only read; ws is exclusively borrowed.
        let status = unsafe { f(self.raw, ws.raw, &sequences, &inputs, &outputs) };
        check(status)?;
        if train {
            ws.trained = Some(Trained {
                model: self.id,
                seq_len: input.seq_len,
                batch: input.batch,
            });
        }
        Ok(())
    }

    /// Inference into caller-owned buffers. Every slice must have exactly
    /// its shape's length (else `SHAPE`, before C is called); x, h0 and c0
    /// must be finite (`NONFINITE`). On failure no output is written.
    pub fn forward_into(
        &self,
        ws: &mut Workspace,
        input: &Input<'_>,
        out: OutputBuffers<'_>,
    ) -> Result<()> {
        self.forward_raw(ws, input, out, false)
    }

    /// Inference, returning y, h_n and c_n.
    pub fn forward(&self, ws: &mut Workspace, input: &Input<'_>) -> Result<Outputs> {
        self.check_input(input)?;
        let mut o = self.allocate_outputs(input)?;
        self.forward_raw(
            ws,
            input,
            OutputBuffers {
                y: Some(&mut o.y),
                h_n: Some(&mut o.h_n),
                c_n: Some(&mut o.c_n),
            },
            false,
        )?;
        Ok(o)
    }

    /// A training forward into caller-owned buffers: as
    /// [`Model::forward_into`], and the workspace keeps what
    /// [`Model::backward`] needs. Dropout (if configured) applies.
    pub fn forward_train_into(
        &mut self,
        ws: &mut Workspace,
        input: &Input<'_>,
        out: OutputBuffers<'_>,
    ) -> Result<()> {
        self.forward_raw(ws, input, out, true)
    }

    /// A training forward, returning y, h_n and c_n.
    pub fn forward_train(&mut self, ws: &mut Workspace, input: &Input<'_>) -> Result<Outputs> {
        self.check_input(input)?;
        let mut o = self.allocate_outputs(input)?;
        self.forward_raw(
            ws,
            input,
            OutputBuffers {
                y: Some(&mut o.y),
                h_n: Some(&mut o.h_n),
                c_n: Some(&mut o.c_n),
            },
            true,
        )?;
        Ok(o)
    }

    /// Truncated BPTT: a training forward over the next `steps` steps of
    /// every stream of `state`, starting from its h and c and leaving it at
    /// the chunk's end (detached). x is `[steps][B][I]`, y (if given)
    /// `[steps][B][R]` (`[B][steps][..]` with `batch_first`). A following
    /// [`Model::backward`] stops at this chunk's first step (pass no
    /// dh_n/dc_n). [`Model::forward_train_chunk_into`] also takes lengths
    /// and a layout.
    pub fn forward_train_chunk(
        &mut self,
        ws: &mut Workspace,
        state: &mut State,
        steps: usize,
        x: &[f32],
        y: Option<&mut [f32]>,
    ) -> Result<()> {
        let batch = state.batch;
        self.forward_train_chunk_into(
            ws,
            state,
            &Input::new(steps, batch, x),
            OutputBuffers {
                y,
                ..OutputBuffers::default()
            },
        )
    }

    /// Truncated BPTT with every argument of `lstm_model_train_chunk`: the
    /// chunk's steps, lengths and layout and its x come from `input`
    /// (`batch` must be the state's, `h0` and `c0` `None`: the state holds
    /// them); `out.y` receives the last layer's h_t, `out.h_n` and `out.c_n`
    /// (`[L][B][R]`, `[L][B][H]`) the state after the chunk. With lengths,
    /// each stream runs its own number of steps and its state is taken at
    /// its own last step. On failure the state is unchanged.
    pub fn forward_train_chunk_into(
        &mut self,
        ws: &mut Workspace,
        state: &mut State,
        input: &Input<'_>,
        mut out: OutputBuffers<'_>,
    ) -> Result<()> {
        state.check_chunk(self, input, &out)?;
        let sequences = input.raw_sequences();
        let inputs = input.raw_inputs();
        let outputs = out.raw();
        ws.trained = None;
        ws.network = None;
        // SAFETY: the structs point into slices checked against the lengths
        // C uses (check_chunk), which outlive the call; the model is only
        // read; ws and state are exclusively borrowed.
        check(unsafe {
            sys::lstm_model_train_chunk(self.raw, ws.raw, state.raw, &sequences, &inputs, &outputs)
        })?;
        ws.trained = Some(Trained {
            model: self.id,
            seq_len: input.seq_len,
            batch: input.batch,
        });
        Ok(())
    }

    /// Backpropagation through time for the last training forward on `ws`,
    /// with only dL/dy (shaped as y). Adds the parameter gradients to
    /// [`Model::grads`]. `STATE` when `ws` holds no training forward of
    /// this model (each backward needs its own training forward).
    pub fn backward(&mut self, ws: &mut Workspace, dy: &[f32]) -> Result<()> {
        self.backward_into(
            ws,
            &OutputGrads {
                dy: Some(dy),
                ..OutputGrads::default()
            },
            InputGrads::default(),
        )
    }

    /// Backpropagation through time with every gradient: dy, dh_n and dc_n
    /// in (`None` for zeros), dx, dh0 and dc0 out (written, not added).
    /// On failure neither the outputs nor the model's gradients change.
    pub fn backward_into(
        &mut self,
        ws: &mut Workspace,
        grads: &OutputGrads<'_>,
        mut out: InputGrads<'_>,
    ) -> Result<()> {
        let trained = match ws.trained {
            Some(t) if t.model == self.id => t,
            Some(_) => {
                return Err(Error::new(
                    status::STATE,
                    "the workspace's training forward was run on another model",
                ))
            }
            None => {
                return Err(Error::new(
                    status::STATE,
                    "the workspace holds no training forward to go back through",
                ))
            }
        };
        let (t, b) = (trained.seq_len, trained.batch);
        check_opt("dy", grads.dy.map(|s| s.len()), &self.y_shape(t, b))?;
        check_opt("dh_n", grads.dh_n.map(|s| s.len()), &self.h_shape(b))?;
        check_opt("dc_n", grads.dc_n.map(|s| s.len()), &self.c_shape(b))?;
        check_opt("dx", len_of(&out.dx), &self.x_shape(t, b))?;
        check_opt("dh0", len_of(&out.dh0), &self.h_shape(b))?;
        check_opt("dc0", len_of(&out.dc0), &self.c_shape(b))?;
        let output_grads = grads.raw();
        let input_grads = out.raw();
        // SAFETY: the structs point into slices checked against the shapes
        // of the training forward the workspace holds (its layout permutes
        // no length), which outlive the call; model and ws are exclusively
        // borrowed.
        check(unsafe {
            sys::lstm_model_train_backward(self.raw, ws.raw, &output_grads, &input_grads)
        })?;
        /* The gates now hold gradients: another backward needs a new forward. */
        ws.trained = None;
        Ok(())
    }

    /* ---- model files ---- */

    fn save_raw(&self, optimizer: Option<&Optimizer>, path: &Path) -> Result<()> {
        let path = path_to_cstring(path)?;
        let optim = optimizer.map_or(ptr::null(), |o| o.raw as *const sys::lstm_optim);
        // SAFETY: read-only on the model and the optimizer (whose state, not
        // bound buffers, is read); path is NUL-terminated.
        check(unsafe { sys::lstm_model_save(self.raw, optim, path.as_ptr()) })
    }

    fn save_vec_raw(&self, optimizer: Option<&Optimizer>) -> Result<Vec<u8>> {
        let optim = optimizer.map_or(ptr::null(), |o| o.raw as *const sys::lstm_optim);
        // SAFETY: read-only on the model and the optimizer; saved_bytes
        // gives a buffer of capacity bytes, or NULL with 0 for the size query.
        saved_bytes(|buffer, capacity, size| unsafe {
            sys::lstm_model_save_buffer(self.raw, optim, buffer, capacity, size)
        })
    }

    /// Saves the model to a file, atomically (the previous file survives
    /// any failure).
    pub fn save<P: AsRef<Path>>(&self, path: P) -> Result<()> {
        self.save_raw(None, path.as_ref())
    }

    /// Saves the model and an optimizer's state to a file.
    pub fn save_with_optimizer<P: AsRef<Path>>(
        &self,
        optimizer: &Optimizer,
        path: P,
    ) -> Result<()> {
        self.save_raw(Some(optimizer), path.as_ref())
    }

    /// The model file's bytes.
    pub fn save_to_vec(&self) -> Result<Vec<u8>> {
        self.save_vec_raw(None)
    }

    /// The model file's bytes, with an optimizer's state.
    pub fn save_to_vec_with_optimizer(&self, optimizer: &Optimizer) -> Result<Vec<u8>> {
        self.save_vec_raw(Some(optimizer))
    }

    /// Saves the model for inference in bf16 or int8, atomically
    /// (`lstm_model_save_quantized`, liblstm 0.7.0; format 1.2): its W and
    /// W_hr as that precision runs them (bf16 values, or int8 with one `f32`
    /// scale per row), 2x or about 4x smaller than in `f32`; biases and
    /// peepholes in `f32`; no optimizer. [`Model::load`] reads it back;
    /// run in that precision, the loaded model gives the bits this one
    /// gives. [`Precision::Fp32`] writes what [`Model::save`] writes.
    pub fn save_quantized<P: AsRef<Path>>(&self, precision: Precision, path: P) -> Result<()> {
        let path = path_to_cstring(path.as_ref())?;
        // SAFETY: read-only model, NUL-terminated path.
        check(unsafe { sys::lstm_model_save_quantized(self.raw, precision.raw(), path.as_ptr()) })
    }

    /// The bytes [`Model::save_quantized`] writes
    /// (`lstm_model_save_quantized_buffer`).
    pub fn save_quantized_to_vec(&self, precision: Precision) -> Result<Vec<u8>> {
        // SAFETY: read-only model; saved_bytes gives a buffer of capacity
        // bytes, or NULL with 0 for the size query.
        saved_bytes(|buffer, capacity, size| unsafe {
            sys::lstm_model_save_quantized_buffer(self.raw, precision.raw(), buffer, capacity, size)
        })
    }
}

/* ------------------------------------------------------------------------ */
/* Workspace                                                                 */
/* ------------------------------------------------------------------------ */

#[derive(Clone, Copy, Debug)]
struct Trained {
    model: u64,
    seq_len: usize,
    batch: usize,
}

/// Scratch memory of forward passes and the activations a training forward
/// keeps for backward (`lstm_workspace`). It serves any model of the
/// configuration it was made for (`SHAPE` otherwise), grows once to the
/// largest call seen, and is freed on drop.
#[derive(Debug)]
pub struct Workspace {
    raw: *mut sys::lstm_workspace,
    /* The shape of the training forward it holds, so backward's slices can
     * be checked; None when C holds none either (or would refuse). */
    trained: Option<Trained>,
    /* The network (its id) whose training forward it holds, and that
     * forward's output rows, so backward's targets can be checked. */
    network: Option<(u64, usize)>,
    /* Of its training calls, as last set: a change drops the forward held. */
    training_precision: Precision,
}

// SAFETY: a workspace has no tie to the thread that created it (its worker
// pool is plain threads it owns). It is not Sync (its raw pointer keeps the
// auto trait off): C lets one thread at a time use it, and every call that
// uses it mutates it, so it takes `&mut Workspace`.
unsafe impl Send for Workspace {}

impl Drop for Workspace {
    fn drop(&mut self) {
        // SAFETY: we own raw.
        unsafe { sys::lstm_workspace_destroy(self.raw) }
    }
}

impl Workspace {
    /// An empty workspace for models shaped like `model`.
    pub fn new(model: &Model) -> Result<Workspace> {
        let mut raw = ptr::null_mut();
        // SAFETY: model is only read; raw is a valid out pointer.
        check(unsafe { sys::lstm_workspace_create(model.raw, &mut raw) })?;
        Ok(Workspace {
            raw,
            trained: None,
            network: None,
            training_precision: Precision::Fp32,
        })
    }

    /// Grows the workspace now, so that calls up to this shape allocate
    /// nothing. Discards a training forward it held.
    pub fn reserve(&mut self, mode: Mode, seq_len: usize, batch: usize) -> Result<()> {
        self.trained = None;
        self.network = None;
        // SAFETY: exclusive access.
        check(unsafe { sys::lstm_workspace_reserve(self.raw, mode.raw(), seq_len, batch) })
    }

    /// Seeds the dropout masks of the training forwards that follow.
    pub fn set_seed(&mut self, seed: u64) -> Result<()> {
        // SAFETY: exclusive access.
        check(unsafe { sys::lstm_workspace_set_seed(self.raw, seed) })
    }

    /// Keeps the model's weights packed from one inference call
    /// ([`Model::forward`], [`Model::forward_into`]) to the next
    /// (`lstm_workspace_keep_weights`, liblstm 0.2.0).
    ///
    /// Each inference call first packs every layer's weights for its
    /// products, which costs about one step of a batch of a few dozen rows.
    /// With `keep`, the next call packs them into memory of the workspace's
    /// own (about the parameters' size) and later calls reuse them while
    /// they run the same model at the same batch size and its parameters
    /// are unchanged. Every change this crate can make is noticed:
    /// [`Model::init`], [`Model::set_params`], [`Model::params_mut`] and
    /// optimizer steps. Outputs are the same to the bit either way.
    /// `keep = false`, the default, packs on every call and frees that
    /// memory. Training calls neither use nor disturb the kept weights.
    ///
    /// Errors: `NOMEM`, changing nothing, when that memory is not there.
    pub fn keep_weights(&mut self, keep: bool) -> Result<()> {
        // SAFETY: exclusive access.
        check(unsafe { sys::lstm_workspace_keep_weights(self.raw, c_int::from(keep)) })
    }

    /// Runs the inference calls on this workspace ([`Model::forward`],
    /// [`Model::forward_into`], and a [`Network`]'s inference) in
    /// `precision` (`lstm_workspace_set_precision`, liblstm 0.7.0).
    /// Training calls on it run in its training precision instead
    /// ([`Workspace::set_training_precision`]). The reduced precisions pack
    /// the weights at each call (or once, with [`Workspace::keep_weights`])
    /// from the model's `f32` parameters, or as a quantized file stored
    /// them; the workspace grows at its first call in one.
    pub fn set_precision(&mut self, precision: Precision) -> Result<()> {
        // SAFETY: exclusive access.
        check(unsafe { sys::lstm_workspace_set_precision(self.raw, precision.raw()) })
    }

    /// Runs the training calls on this workspace ([`Model::forward_train`],
    /// [`Model::forward_train_chunk`], [`Model::backward`], their `_into`
    /// forms, and a [`Network`]'s training) in `precision`
    /// (`lstm_workspace_set_training_precision`, liblstm 0.8.0):
    /// [`Precision::Fp32`], the default, or [`Precision::Bf16`], mixed
    /// precision: every matrix product of the forward and backward passes
    /// rounds its two operands to bfloat16 and sums in `f32`, while the
    /// parameters, their gradients, the optimizers' state, the biases and
    /// the cells stay `f32` (no loss scaling is needed: bf16 has `f32`'s
    /// exponent range).
    ///
    /// Inference calls keep their own precision
    /// ([`Workspace::set_precision`]). A change of precision drops the
    /// training forward the workspace holds: the backward that follows
    /// fails with `STATE`; setting the current precision again changes
    /// nothing.
    ///
    /// Errors: `ARG` for [`Precision::Int8`], which is for inference only;
    /// the workspace is then unchanged.
    pub fn set_training_precision(&mut self, precision: Precision) -> Result<()> {
        // SAFETY: exclusive access.
        check(unsafe { sys::lstm_workspace_set_training_precision(self.raw, precision.raw()) })?;
        if precision != self.training_precision {
            /* C dropped the training forward it held */
            self.trained = None;
            self.network = None;
            self.training_precision = precision;
        }
        Ok(())
    }

    /// The precision of the training calls on this workspace
    /// ([`Workspace::set_training_precision`]; [`Precision::Fp32`] at first).
    pub fn training_precision(&self) -> Precision {
        self.training_precision
    }
}

/* ------------------------------------------------------------------------ */
/* Streaming state                                                           */
/* ------------------------------------------------------------------------ */

/// The h and c of a batch of streams (`lstm_state`), for running a
/// unidirectional model a step or a chunk at a time: the same results, bit
/// for bit, as one whole-sequence forward. Freed on drop.
#[derive(Debug)]
pub struct State {
    raw: *mut sys::lstm_state,
    batch: usize,
    /* What C's lstm_state compares against a model, kept to size h and c. */
    input_size: usize,
    hidden_size: usize,
    state_size: usize,
    num_layers: usize,
    proj_size: usize,
    peephole: bool,
}

// SAFETY: as for Workspace: movable between threads, one thread at a time,
// every C call on it mutates it (`&mut State`), so not Sync.
unsafe impl Send for State {}

impl Drop for State {
    fn drop(&mut self) {
        // SAFETY: we own raw.
        unsafe { sys::lstm_state_destroy(self.raw) }
    }
}

impl State {
    /// A zero state for `batch` streams of models shaped like `model`.
    /// `ARG` for a bidirectional model.
    pub fn new(model: &Model, batch: usize) -> Result<State> {
        let mut raw = ptr::null_mut();
        // SAFETY: model is only read; raw is a valid out pointer.
        check(unsafe { sys::lstm_state_create(model.raw, batch, &mut raw) })?;
        let c = &model.config;
        Ok(State {
            raw,
            batch,
            input_size: c.input_size,
            hidden_size: c.hidden_size,
            state_size: c.state_size(),
            num_layers: c.layers(),
            proj_size: c.proj_size,
            peephole: c.peephole,
        })
    }

    /// B, the number of streams.
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// The length of h, `[L][B][R]`.
    pub fn h_len(&self) -> usize {
        self.num_layers * self.batch * self.state_size
    }

    /// The length of c, `[L][B][H]`.
    pub fn c_len(&self) -> usize {
        self.num_layers * self.batch * self.hidden_size
    }

    fn h_shape(&self) -> [(&'static str, usize); 3] {
        [
            ("num_layers", self.num_layers),
            ("batch", self.batch),
            ("state size", self.state_size),
        ]
    }

    fn c_shape(&self) -> [(&'static str, usize); 3] {
        [
            ("num_layers", self.num_layers),
            ("batch", self.batch),
            ("hidden_size", self.hidden_size),
        ]
    }

    /// SHAPE unless model has this state's configuration (as C checks it).
    fn check_model(&self, model: &Model) -> Result<()> {
        let c = &model.config;
        if c.input_size != self.input_size
            || c.hidden_size != self.hidden_size
            || c.layers() != self.num_layers
            || c.proj_size != self.proj_size
            || c.peephole != self.peephole
            || c.bidirectional
        {
            return Err(Error::new(
                status::SHAPE,
                "the state was created for a model of another configuration",
            ));
        }
        Ok(())
    }

    /// The checks of a chunk's arguments before C is called: the model's
    /// configuration, the batch, h0 and c0 left to the state, and every
    /// slice's length.
    fn check_chunk(&self, model: &Model, input: &Input<'_>, out: &OutputBuffers<'_>) -> Result<()> {
        self.check_model(model)?;
        if input.batch != self.batch {
            return Err(Error::new(
                status::SHAPE,
                format!(
                    "the input has batch {}; the state has {} streams",
                    input.batch, self.batch
                ),
            ));
        }
        if input.h0.is_some() || input.c0.is_some() {
            return Err(Error::new(
                status::ARG,
                format!(
                    "the input's {} is set; it must be None, the state holds it",
                    if input.h0.is_some() { "h0" } else { "c0" }
                ),
            ));
        }
        /* A unidirectional model: h is [L][B][R] and c [L][B][H], the
         * model's shapes with D = 1. */
        model.check_input(input)?;
        model.check_outputs(input.seq_len, input.batch, out)
    }

    /// Sets h and c of every stream to zero.
    pub fn reset(&mut self) -> Result<()> {
        // SAFETY: exclusive access.
        check(unsafe { sys::lstm_state_reset(self.raw) })
    }

    /// Keeps the model's weights packed from one [`State::run`] or
    /// [`State::step`] call to the next (`lstm_state_keep_weights`,
    /// liblstm 0.2.0), as [`Workspace::keep_weights`] does for inference
    /// calls and under the same rules: outputs the same to the bit,
    /// parameter changes noticed, `keep = false` (the default) frees the
    /// memory. Each call packs the weights first, which at small batches
    /// costs more than the steps themselves: this pays most when stepping
    /// a few streams at a time.
    ///
    /// Errors: `NOMEM`, changing nothing, when that memory is not there.
    pub fn keep_weights(&mut self, keep: bool) -> Result<()> {
        // SAFETY: exclusive access.
        check(unsafe { sys::lstm_state_keep_weights(self.raw, c_int::from(keep)) })
    }

    /// Runs this state's calls ([`State::step`], [`State::run`],
    /// [`State::run_chunk`] and their `_into` forms) in `precision`
    /// (`lstm_state_set_precision`, liblstm 0.7.0), as
    /// [`Workspace::set_precision`] does whole calls: chunk by chunk in a
    /// precision gives, bit for bit, one whole call in it.
    pub fn set_precision(&mut self, precision: Precision) -> Result<()> {
        // SAFETY: exclusive access.
        check(unsafe { sys::lstm_state_set_precision(self.raw, precision.raw()) })
    }

    /// Copies h and c out (`None` skips one).
    pub fn get_into(&self, mut h: Option<&mut [f32]>, mut c: Option<&mut [f32]>) -> Result<()> {
        check_opt("h", len_of(&h), &self.h_shape())?;
        check_opt("c", len_of(&c), &self.c_shape())?;
        // SAFETY: lengths checked; the state is only read.
        check(unsafe { sys::lstm_state_get(self.raw, mut_ptr_of(&mut h), mut_ptr_of(&mut c)) })
    }

    /// h `[L][B][R]` and c `[L][B][H]`.
    pub fn get(&self) -> Result<(Vec<f32>, Vec<f32>)> {
        let mut h = zeros(self.h_len())?;
        let mut c = zeros(self.c_len())?;
        self.get_into(Some(&mut h), Some(&mut c))?;
        Ok((h, c))
    }

    /// Replaces h and c (`None` for zeros); finite values, all or nothing.
    pub fn set(&mut self, h: Option<&[f32]>, c: Option<&[f32]>) -> Result<()> {
        check_opt("h", h.map(|s| s.len()), &self.h_shape())?;
        check_opt("c", c.map(|s| s.len()), &self.c_shape())?;
        // SAFETY: lengths checked; exclusive access.
        check(unsafe { sys::lstm_state_set(self.raw, ptr_of(h), ptr_of(c)) })
    }

    /// Runs `steps` steps of every stream into a caller-owned y (or none):
    /// x `[steps][B][I]` (`[B][steps][I]` with `batch_first`), y
    /// `[steps][B][R]` (likewise). On failure the state is unchanged.
    /// [`State::run_chunk_into`] also takes lengths and a layout.
    pub fn run_into(
        &mut self,
        model: &Model,
        steps: usize,
        x: &[f32],
        y: Option<&mut [f32]>,
    ) -> Result<()> {
        let batch = self.batch;
        self.run_chunk_into(
            model,
            &Input::new(steps, batch, x),
            OutputBuffers {
                y,
                ..OutputBuffers::default()
            },
        )
    }

    /// Runs a chunk with every argument of `lstm_model_infer_stream`: its
    /// steps, lengths and layout and its x come from `input` (`batch` must
    /// be the state's, `h0` and `c0` `None`: the state holds them);
    /// `out.y` receives the last layer's h_t, `out.h_n` and `out.c_n`
    /// (`[L][B][R]`, `[L][B][H]`) the state after the chunk. With lengths,
    /// each stream runs its own number of steps: its y is zero past them,
    /// and its h and c are taken at its own last step, which the next
    /// chunk continues from. On failure the state is unchanged.
    pub fn run_chunk_into(
        &mut self,
        model: &Model,
        input: &Input<'_>,
        mut out: OutputBuffers<'_>,
    ) -> Result<()> {
        self.check_chunk(model, input, &out)?;
        let sequences = input.raw_sequences();
        let inputs = input.raw_inputs();
        let outputs = out.raw();
        // SAFETY: the structs point into slices checked against the lengths
        // C uses (check_chunk), which outlive the call; the model is only
        // read; the state is exclusively borrowed.
        check(unsafe {
            sys::lstm_model_infer_stream(model.raw, self.raw, &sequences, &inputs, &outputs)
        })
    }

    /// Runs a chunk as [`State::run_chunk_into`] does and returns y, and
    /// the state after it as `h_n` and `c_n`.
    ///
    /// ```
    /// use lstm::{Config, Input, Layout, Model, State};
    /// # fn main() -> lstm::Result<()> {
    /// let mut model = Model::new(&Config::new(3, 8))?;
    /// model.init(1, true)?;
    /// let mut state = State::new(&model, 2)?;
    /// let x = vec![0.5f32; 2 * 4 * 3]; // [B = 2][T = 4][I = 3]
    /// let lengths = [4usize, 1]; // stream 1 has one step of data
    /// let input = Input::new(4, 2, &x).lengths(&lengths).layout(Layout::BatchMajor);
    /// let out = state.run_chunk(&model, &input)?;
    /// assert!(out.y[(4 + 1) * 8..].iter().all(|&v| v == 0.0)); // stream 1 after step 1
    /// assert_eq!(out.h_n, state.get()?.0);
    /// # Ok(()) }
    /// ```
    pub fn run_chunk(&mut self, model: &Model, input: &Input<'_>) -> Result<Outputs> {
        self.check_chunk(model, input, &OutputBuffers::default())?;
        let mut o = model.allocate_outputs(input)?;
        self.run_chunk_into(
            model,
            input,
            OutputBuffers {
                y: Some(&mut o.y),
                h_n: Some(&mut o.h_n),
                c_n: Some(&mut o.c_n),
            },
        )?;
        Ok(o)
    }

    /// Runs `steps` steps and returns y, `[steps][B][R]`.
    pub fn run(&mut self, model: &Model, steps: usize, x: &[f32]) -> Result<Vec<f32>> {
        let len = product(
            "y",
            &[
                ("steps", steps),
                ("batch", self.batch),
                ("state size", self.state_size),
            ],
        )?;
        self.check_model(model)?;
        check_len(
            "x",
            x.len(),
            &[
                ("steps", steps),
                ("batch", self.batch),
                ("input_size", self.input_size),
            ],
        )?;
        let mut y = zeros(len)?;
        self.run_into(model, steps, x, Some(&mut y))?;
        Ok(y)
    }

    /// One step of every stream: x_t `[B][I]` in, y_t `[B][R]` out.
    pub fn step_into(
        &mut self,
        model: &Model,
        x_t: &[f32],
        mut y_t: Option<&mut [f32]>,
    ) -> Result<()> {
        self.check_model(model)?;
        let (b, i, r) = (self.batch, self.input_size, self.state_size);
        check_len("x_t", x_t.len(), &[("batch", b), ("input_size", i)])?;
        check_opt("y_t", len_of(&y_t), &[("batch", b), ("state size", r)])?;
        // SAFETY: as in run_into().
        check(unsafe {
            sys::lstm_model_step(model.raw, self.raw, x_t.as_ptr(), mut_ptr_of(&mut y_t))
        })
    }

    /// One step of every stream, returning y_t `[B][R]`.
    pub fn step(&mut self, model: &Model, x_t: &[f32]) -> Result<Vec<f32>> {
        let mut y = zeros(self.batch * self.state_size)?;
        self.step_into(model, x_t, Some(&mut y))?;
        Ok(y)
    }
}

/* ------------------------------------------------------------------------ */
/* Optimizers                                                                */
/* ------------------------------------------------------------------------ */

/// The update rule of an [`Optimizer`]: torch.optim's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptimKind {
    /// torch.optim.SGD.
    Sgd,
    /// torch.optim.Adagrad.
    Adagrad,
    /// torch.optim.RMSprop.
    RmsProp,
    /// torch.optim.Adam.
    Adam,
    /// torch.optim.AdamW.
    AdamW,
}

impl OptimKind {
    fn raw(self) -> sys::lstm_optim_kind {
        match self {
            OptimKind::Sgd => sys::LSTM_OPTIM_SGD,
            OptimKind::Adagrad => sys::LSTM_OPTIM_ADAGRAD,
            OptimKind::RmsProp => sys::LSTM_OPTIM_RMSPROP,
            OptimKind::Adam => sys::LSTM_OPTIM_ADAM,
            OptimKind::AdamW => sys::LSTM_OPTIM_ADAMW,
        }
    }
}

/// Options of an optimizer (`lstm_optim_options`) with PyTorch's names,
/// meanings and defaults. Fields a kind does not use are ignored; values
/// are checked when the optimizer is created (`ARG`, naming the field).
///
/// ```
/// let adam = lstm::OptimOptions::adam().lr(0.01).amsgrad(true);
/// let sgd = lstm::OptimOptions::sgd().lr(0.1).momentum(0.9).nesterov(true);
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct OptimOptions {
    /// The update rule.
    pub kind: OptimKind,
    /// Learning rate (SGD 0.01, Adagrad 0.01, RMSprop 0.01, Adam(W) 0.001).
    pub lr: f64,
    /// L2 penalty, decoupled for AdamW (0; AdamW 0.01).
    pub weight_decay: f64,
    /// SGD, RMSprop momentum (0).
    pub momentum: f64,
    /// SGD dampening (0).
    pub dampening: f64,
    /// RMSprop smoothing constant (0.99).
    pub alpha: f64,
    /// Adam(W) beta1 (0.9).
    pub beta1: f64,
    /// Adam(W) beta2 (0.999).
    pub beta2: f64,
    /// Denominator term (Adagrad 1e-10, others 1e-8).
    pub eps: f64,
    /// Adagrad learning-rate decay (0).
    pub lr_decay: f64,
    /// Adagrad initial accumulator (0).
    pub initial_accumulator_value: f64,
    /// SGD: Nesterov momentum.
    pub nesterov: bool,
    /// RMSprop: centred.
    pub centered: bool,
    /// Adam(W): AMSGrad.
    pub amsgrad: bool,
    /// Any kind: maximise instead of minimise.
    pub maximize: bool,
    /// Threads a step may use: 0 = the library chooses, 1 = the caller's only.
    pub threads: u32,
}

macro_rules! setters {
    ($($(#[$doc:meta])* $name:ident: $ty:ty),* $(,)?) => {
        $(
            $(#[$doc])*
            pub fn $name(mut self, $name: $ty) -> OptimOptions {
                self.$name = $name;
                self
            }
        )*
    };
}

impl OptimOptions {
    /// PyTorch's defaults for a kind (`lstm_optim_options_init`).
    pub fn new(kind: OptimKind) -> OptimOptions {
        let mut raw = sys::lstm_optim_options::default();
        // SAFETY: raw is a valid struct of the size we pass.
        let status = unsafe {
            sys::lstm_optim_options_init(
                &mut raw,
                std::mem::size_of::<sys::lstm_optim_options>(),
                kind.raw(),
            )
        };
        debug_assert_eq!(status, sys::LSTM_OK);
        OptimOptions {
            kind,
            lr: raw.lr,
            weight_decay: raw.weight_decay,
            momentum: raw.momentum,
            dampening: raw.dampening,
            alpha: raw.alpha,
            beta1: raw.beta1,
            beta2: raw.beta2,
            eps: raw.eps,
            lr_decay: raw.lr_decay,
            initial_accumulator_value: raw.initial_accumulator_value,
            nesterov: raw.flags & sys::LSTM_OPTIM_NESTEROV != 0,
            centered: raw.flags & sys::LSTM_OPTIM_CENTERED != 0,
            amsgrad: raw.flags & sys::LSTM_OPTIM_AMSGRAD != 0,
            maximize: raw.flags & sys::LSTM_OPTIM_MAXIMIZE != 0,
            threads: raw.threads,
        }
    }
    /// SGD with its defaults.
    pub fn sgd() -> OptimOptions {
        OptimOptions::new(OptimKind::Sgd)
    }
    /// Adagrad with its defaults.
    pub fn adagrad() -> OptimOptions {
        OptimOptions::new(OptimKind::Adagrad)
    }
    /// RMSprop with its defaults.
    pub fn rmsprop() -> OptimOptions {
        OptimOptions::new(OptimKind::RmsProp)
    }
    /// Adam with its defaults.
    pub fn adam() -> OptimOptions {
        OptimOptions::new(OptimKind::Adam)
    }
    /// AdamW with its defaults.
    pub fn adamw() -> OptimOptions {
        OptimOptions::new(OptimKind::AdamW)
    }

    setters! {
        /// Sets `lr`.
        lr: f64,
        /// Sets `weight_decay`.
        weight_decay: f64,
        /// Sets `momentum`.
        momentum: f64,
        /// Sets `dampening`.
        dampening: f64,
        /// Sets `alpha`.
        alpha: f64,
        /// Sets `beta1`.
        beta1: f64,
        /// Sets `beta2`.
        beta2: f64,
        /// Sets `eps`.
        eps: f64,
        /// Sets `lr_decay`.
        lr_decay: f64,
        /// Sets `initial_accumulator_value`.
        initial_accumulator_value: f64,
        /// Sets `nesterov`.
        nesterov: bool,
        /// Sets `centered`.
        centered: bool,
        /// Sets `amsgrad`.
        amsgrad: bool,
        /// Sets `maximize`.
        maximize: bool,
        /// Sets `threads`.
        threads: u32,
    }

    /// Sets `beta1` and `beta2` (PyTorch's `betas`).
    pub fn betas(self, beta1: f64, beta2: f64) -> OptimOptions {
        self.beta1(beta1).beta2(beta2)
    }

    fn to_raw(&self) -> sys::lstm_optim_options {
        let flag = |on: bool, bit: u32| if on { bit } else { 0 };
        sys::lstm_optim_options {
            struct_size: std::mem::size_of::<sys::lstm_optim_options>(),
            kind: self.kind.raw(),
            flags: flag(self.nesterov, sys::LSTM_OPTIM_NESTEROV)
                | flag(self.centered, sys::LSTM_OPTIM_CENTERED)
                | flag(self.amsgrad, sys::LSTM_OPTIM_AMSGRAD)
                | flag(self.maximize, sys::LSTM_OPTIM_MAXIMIZE),
            lr: self.lr,
            weight_decay: self.weight_decay,
            momentum: self.momentum,
            dampening: self.dampening,
            alpha: self.alpha,
            beta1: self.beta1,
            beta2: self.beta2,
            eps: self.eps,
            lr_decay: self.lr_decay,
            initial_accumulator_value: self.initial_accumulator_value,
            threads: self.threads,
        }
    }
}

/// A parameter buffer with its gradient buffer, owned by Rust, for
/// parameters outside a [`Model`] (an output layer, for example) that an
/// [`Optimizer`] should update. Its length never changes, so its memory
/// stays where an optimizer saw it.
pub struct ParamBuffer {
    /* Both allocated by Box::into_raw and freed in Drop; every view is made
     * from these raw pointers, the same ones an optimizer writes through. */
    params: *mut f32,
    grads: *mut f32,
    len: usize,
    id: u64,
}

// SAFETY: plain owned memory; `&self` only reads it, writes need `&mut self`.
unsafe impl Send for ParamBuffer {}
// SAFETY: as above.
unsafe impl Sync for ParamBuffer {}

impl fmt::Debug for ParamBuffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ParamBuffer")
            .field("params", &self.params())
            .field("grads", &self.grads())
            .finish()
    }
}

impl Drop for ParamBuffer {
    fn drop(&mut self) {
        // SAFETY: both came from Box::<[f32]>::into_raw with this length.
        unsafe {
            drop(Box::from_raw(ptr::slice_from_raw_parts_mut(
                self.params,
                self.len,
            )));
            drop(Box::from_raw(ptr::slice_from_raw_parts_mut(
                self.grads, self.len,
            )));
        }
    }
}

impl Clone for ParamBuffer {
    fn clone(&self) -> ParamBuffer {
        let mut copy = ParamBuffer::new(self.params().to_vec());
        copy.grads_mut().copy_from_slice(self.grads());
        copy
    }
}

impl ParamBuffer {
    /// Parameters with these values and gradients at zero.
    pub fn new(params: Vec<f32>) -> ParamBuffer {
        let len = params.len();
        let grads = vec![0.0f32; len].into_boxed_slice();
        ParamBuffer {
            params: Box::into_raw(params.into_boxed_slice()) as *mut f32,
            grads: Box::into_raw(grads) as *mut f32,
            len,
            id: next_id(),
        }
    }

    /// `len` parameters and gradients at zero.
    pub fn zeros(len: usize) -> ParamBuffer {
        ParamBuffer::new(vec![0.0; len])
    }

    /// The number of parameters.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the buffer holds no parameter.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The parameters.
    pub fn params(&self) -> &[f32] {
        // SAFETY: len floats owned by self, written only through &mut self.
        unsafe { std::slice::from_raw_parts(self.params, self.len) }
    }

    /// The parameters, writable.
    pub fn params_mut(&mut self) -> &mut [f32] {
        // SAFETY: as above; &mut self makes this view unique.
        unsafe { std::slice::from_raw_parts_mut(self.params, self.len) }
    }

    /// The gradients.
    pub fn grads(&self) -> &[f32] {
        // SAFETY: as in params().
        unsafe { std::slice::from_raw_parts(self.grads, self.len) }
    }

    /// The gradients, writable (accumulate into them).
    pub fn grads_mut(&mut self) -> &mut [f32] {
        // SAFETY: as in params_mut().
        unsafe { std::slice::from_raw_parts_mut(self.grads, self.len) }
    }

    /// The parameters to read and the gradients to write, at once.
    pub fn params_and_grads_mut(&mut self) -> (&[f32], &mut [f32]) {
        // SAFETY: two distinct allocations; &mut self makes the gradient view unique.
        unsafe {
            (
                std::slice::from_raw_parts(self.params, self.len),
                std::slice::from_raw_parts_mut(self.grads, self.len),
            )
        }
    }

    /// Sets every gradient to zero.
    pub fn zero_grads(&mut self) {
        for g in self.grads_mut() {
            *g = 0.0;
        }
    }
}

pub(crate) mod sealed {
    pub trait Sealed {}
    impl Sealed for super::Model {}
    impl Sealed for super::ParamBuffer {}
}

/// What an [`Optimizer`] can update: a [`Model`], a [`ParamBuffer`] or a
/// [`Network`] (every part of it).
/// Sealed: the optimizer relies on the buffers staying put.
pub trait Parameters: sealed::Sealed {
    #[doc(hidden)]
    fn binding_id(&self) -> u64;
    #[doc(hidden)]
    /// # Safety
    /// `optim` must be a valid optimizer; the caller must use the bound
    /// buffers only while it holds `&mut self` of this object.
    unsafe fn bind_to(&mut self, optim: *mut sys::lstm_optim) -> c_int;
}

impl Parameters for Model {
    fn binding_id(&self) -> u64 {
        self.id
    }
    unsafe fn bind_to(&mut self, optim: *mut sys::lstm_optim) -> c_int {
        /* its steps write the parameters */
        self.materialize();
        // SAFETY: the caller's contract; self.raw is a valid model.
        unsafe { sys::lstm_optim_add_model(optim, self.raw) }
    }
}

impl Parameters for ParamBuffer {
    fn binding_id(&self) -> u64 {
        self.id
    }
    unsafe fn bind_to(&mut self, optim: *mut sys::lstm_optim) -> c_int {
        // SAFETY: the caller's contract; both buffers hold len floats.
        unsafe { sys::lstm_optim_add_buffer(optim, self.params, self.grads, self.len) }
    }
}

/// An optimizer (`lstm_optim`) bound to one [`Model`] or [`ParamBuffer`].
///
/// The C optimizer keeps pointers to the bound buffers. So that safe code
/// can never have it write to freed memory or race with another access,
/// every call that touches the buffers (step, zero_grads, clipping) takes
/// `&mut` of the bound object and checks that it is the one bound (else
/// `ARG`). The object may be dropped first; the optimizer then can no longer
/// step. To train a model and an output layer, use one optimizer for each
/// (they are elementwise, so this equals one optimizer over both, except
/// that gradient-norm clipping then covers each separately).
///
/// Freed on drop. `Send`, not `Sync`: C gives an optimizer to one thread at
/// a time, and its buffer-touching calls need `&mut self` anyway.
#[derive(Debug)]
pub struct Optimizer {
    raw: *mut sys::lstm_optim,
    target: u64,
}

// SAFETY: an optimizer is heap memory, and maybe a pool of worker threads,
// with no affinity to the thread that made it or calls it. The buffers
// it points to are only reached through calls that hold `&mut` of their
// owner, on whichever thread makes the call. Not Sync (raw pointer).
unsafe impl Send for Optimizer {}

impl Drop for Optimizer {
    fn drop(&mut self) {
        // SAFETY: we own raw; destroying it touches no bound buffer.
        unsafe { sys::lstm_optim_destroy(self.raw) }
    }
}

impl Optimizer {
    /// Creates an optimizer and binds all of `target`'s parameters and
    /// gradients. `ARG` names a bad option.
    pub fn new<P: Parameters>(options: &OptimOptions, target: &mut P) -> Result<Optimizer> {
        let raw_options = options.to_raw();
        let mut raw = ptr::null_mut();
        // SAFETY: a valid options struct and out pointer.
        check(unsafe { sys::lstm_optim_create(&raw_options, &mut raw) })?;
        let optimizer = Optimizer {
            raw,
            target: target.binding_id(),
        };
        // SAFETY: raw is valid; we use the bound buffers only with &mut target.
        check(unsafe { target.bind_to(optimizer.raw) })?;
        Ok(optimizer)
    }

    fn check_target<P: Parameters>(&self, target: &P) -> Result<()> {
        if target.binding_id() == self.target {
            Ok(())
        } else {
            Err(Error::new(
                status::ARG,
                "this optimizer is bound to another model or buffer",
            ))
        }
    }

    /// One update of every parameter of `target` from its gradient. All or
    /// nothing: a NaN or infinite gradient gives `NONFINITE` and changes
    /// nothing.
    pub fn step<P: Parameters>(&mut self, target: &mut P) -> Result<()> {
        self.check_target(target)?;
        // SAFETY: target, the bound object, is exclusively borrowed.
        check(unsafe { sys::lstm_optim_step(self.raw) })
    }

    /// Sets every gradient of `target` to zero.
    pub fn zero_grads<P: Parameters>(&mut self, target: &mut P) -> Result<()> {
        self.check_target(target)?;
        // SAFETY: as in step().
        check(unsafe { sys::lstm_optim_zero_grads(self.raw) })
    }

    /// Scales the gradients so that their L2 norm is at most `max_norm`
    /// (torch's clip_grad_norm_); returns the norm before clipping.
    pub fn clip_grad_norm<P: Parameters>(&mut self, target: &mut P, max_norm: f64) -> Result<f64> {
        self.check_target(target)?;
        let mut norm = 0.0;
        // SAFETY: as in step().
        check(unsafe { sys::lstm_optim_clip_grad_norm(self.raw, max_norm, &mut norm) })?;
        Ok(norm)
    }

    /// Clamps every gradient to [-clip_value, clip_value].
    pub fn clip_grad_value<P: Parameters>(
        &mut self,
        target: &mut P,
        clip_value: f64,
    ) -> Result<()> {
        self.check_target(target)?;
        // SAFETY: as in step().
        check(unsafe { sys::lstm_optim_clip_grad_value(self.raw, clip_value) })
    }

    /// The current learning rate.
    pub fn lr(&self) -> f64 {
        let mut lr = 0.0;
        // SAFETY: read-only, valid out pointer; cannot fail for a valid handle.
        let status = unsafe { sys::lstm_optim_get_lr(self.raw, &mut lr) };
        debug_assert_eq!(status, sys::LSTM_OK);
        lr
    }

    /// Changes the learning rate (finite, >= 0) for the following steps.
    pub fn set_lr(&mut self, lr: f64) -> Result<()> {
        // SAFETY: exclusive access.
        check(unsafe { sys::lstm_optim_set_lr(self.raw, lr) })
    }

    /// Steps taken.
    pub fn step_count(&self) -> u64 {
        let mut steps = 0;
        // SAFETY: read-only, valid out pointer.
        let status = unsafe { sys::lstm_optim_step_count(self.raw, &mut steps) };
        debug_assert_eq!(status, sys::LSTM_OK);
        steps
    }

    /// The number of bound parameters.
    pub fn param_count(&self) -> usize {
        // SAFETY: read-only.
        unsafe { sys::lstm_optim_param_count(self.raw) }
    }

    /// The optimizer's state (moments, step count) in the documented flat
    /// layout (lstm/optim.h): little-endian on every host, the bytes of a
    /// model file's OPTM section.
    pub fn save_state(&self) -> Result<Vec<u8>> {
        let mut size = 0;
        // SAFETY: read-only, valid out pointer.
        check(unsafe { sys::lstm_optim_state_size(self.raw, &mut size) })?;
        let mut bytes = vec![0u8; size];
        // SAFETY: bytes holds size bytes.
        check(unsafe {
            sys::lstm_optim_save_state(self.raw, bytes.as_mut_ptr() as *mut c_void, bytes.len())
        })?;
        Ok(bytes)
    }

    /// Restores a state saved by an optimizer of the same kind, flags and
    /// sizes; everything is checked first and nothing changes on failure.
    pub fn load_state(&mut self, bytes: &[u8]) -> Result<()> {
        // SAFETY: bytes is valid for its length; exclusive access. Only the
        // optimizer's own state is written, never the bound buffers.
        check(unsafe {
            sys::lstm_optim_load_state(self.raw, bytes.as_ptr() as *const c_void, bytes.len())
        })
    }

    /// Restores the optimizer state stored in a model file's bytes
    /// ([`Model::save_to_vec_with_optimizer`]); `FORMAT` if it holds none.
    pub fn load_from_model_slice(&mut self, bytes: &[u8]) -> Result<()> {
        // SAFETY: as in load_state().
        check(unsafe {
            sys::lstm_optim_load_buffer(self.raw, bytes.as_ptr() as *const c_void, bytes.len())
        })
    }

    /// Restores the optimizer state stored in a model file
    /// ([`Model::save_with_optimizer`]).
    pub fn load_from_model_file<P: AsRef<Path>>(&mut self, path: P) -> Result<()> {
        let path = path_to_cstring(path.as_ref())?;
        // SAFETY: as in load_state(); path is NUL-terminated.
        check(unsafe { sys::lstm_optim_load(self.raw, path.as_ptr()) })
    }
}

/// Learning-rate schedules (torch.optim.lr_scheduler's closed forms).
pub mod schedule {
    use super::{check, sys, Result};

    /// StepLR: `base_lr * gamma^floor(epoch / step_size)`.
    pub fn step(base_lr: f64, gamma: f64, step_size: u64, epoch: u64) -> Result<f64> {
        let mut lr = 0.0;
        // SAFETY: valid out pointer.
        check(unsafe { sys::lstm_schedule_step(base_lr, gamma, step_size, epoch, &mut lr) })?;
        Ok(lr)
    }

    /// CosineAnnealingLR:
    /// `eta_min + (base_lr - eta_min) (1 + cos(pi epoch / t_max)) / 2`.
    pub fn cosine(base_lr: f64, eta_min: f64, t_max: u64, epoch: u64) -> Result<f64> {
        let mut lr = 0.0;
        // SAFETY: valid out pointer.
        check(unsafe { sys::lstm_schedule_cosine(base_lr, eta_min, t_max, epoch, &mut lr) })?;
        Ok(lr)
    }
}
