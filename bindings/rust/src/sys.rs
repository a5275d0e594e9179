//! Raw declarations of liblstm's public C API (`include/lstm/*.h`).
//!
//! These mirror the headers one for one: same names, same argument order,
//! same struct layouts. C enums (`lstm_status`, `lstm_tensor`, `lstm_mode`,
//! `lstm_optim_kind`) are `int`-sized and passed as `c_int`; `lstm_layout`
//! travels in the `uint32_t` field `lstm_sequences::layout`. The header's
//! `_INIT` macros are the constants of the same names. Everything here is
//! `unsafe` to call; the crate root wraps it in a safe API.
//!
//! The sequence calls come in two forms: the argument-struct calls of
//! liblstm 0.3.0 (`lstm_model_infer`, `lstm_model_train_forward`,
//! `lstm_model_train_backward`, `lstm_model_infer_stream`,
//! `lstm_model_train_chunk`; version node `LSTM_1.2`), which the safe API
//! uses, and the older positional forms, declared here because the headers
//! still declare them.

#![allow(non_camel_case_types)]

use std::mem::size_of;
use std::os::raw::{c_char, c_int, c_uint, c_void};
use std::ptr;

/* ---- lstm/common.h ---- */

/// `lstm_status`: explicit values, never renumbered.
pub type lstm_status = c_int;
pub const LSTM_OK: lstm_status = 0;
pub const LSTM_E_NULL: lstm_status = 1;
pub const LSTM_E_SIZE: lstm_status = 2;
pub const LSTM_E_OVERFLOW: lstm_status = 3;
pub const LSTM_E_SHAPE: lstm_status = 4;
pub const LSTM_E_ARG: lstm_status = 5;
pub const LSTM_E_NONFINITE: lstm_status = 6;
pub const LSTM_E_NOMEM: lstm_status = 7;
pub const LSTM_E_STATE: lstm_status = 8;
pub const LSTM_E_IO: lstm_status = 9;
pub const LSTM_E_FORMAT: lstm_status = 10;
pub const LSTM_E_UNSUPPORTED: lstm_status = 11;
pub const LSTM_E_NOT_FOUND: lstm_status = 12;

/* ---- lstm/model.h ---- */

pub const LSTM_MAX_SIZE: usize = 1 << 24;
pub const LSTM_MAX_LAYERS: usize = 1024;

pub const LSTM_BIDIRECTIONAL: u32 = 0x1;
pub const LSTM_BATCH_FIRST: u32 = 0x2;
pub const LSTM_PEEPHOLE: u32 = 0x4;

/// `lstm_config`: `struct_size` first; the struct only grows at the end.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct lstm_config {
    pub struct_size: usize,
    pub input_size: usize,
    pub hidden_size: usize,
    pub num_layers: usize,
    pub flags: u32,
    pub proj_size: usize,
    pub dropout: f64,
}

/// Opaque `lstm_model`.
#[repr(C)]
pub struct lstm_model {
    _private: [u8; 0],
}

/// `lstm_tensor`.
pub type lstm_tensor = c_int;
pub const LSTM_TENSOR_WEIGHT: lstm_tensor = 0;
pub const LSTM_TENSOR_BIAS: lstm_tensor = 1;
pub const LSTM_TENSOR_PROJECTION: lstm_tensor = 2;
pub const LSTM_TENSOR_PEEPHOLE: lstm_tensor = 3;

pub const LSTM_INIT_FORGET_BIAS_ONE: u32 = 0x1;

/// `lstm_mode`.
pub type lstm_mode = c_int;
pub const LSTM_MODE_INFER: lstm_mode = 0;
pub const LSTM_MODE_TRAIN: lstm_mode = 1;

/// Opaque `lstm_workspace`.
#[repr(C)]
pub struct lstm_workspace {
    _private: [u8; 0],
}

/// Opaque `lstm_state`.
#[repr(C)]
pub struct lstm_state {
    _private: [u8; 0],
}

/// `lstm_precision` (liblstm 0.7.0): the arithmetic of inference's
/// matrix products.
pub type lstm_precision = c_int;
pub const LSTM_PRECISION_FP32: lstm_precision = 0;
pub const LSTM_PRECISION_BF16: lstm_precision = 1;
pub const LSTM_PRECISION_INT8: lstm_precision = 2;

/// `lstm_layout`, for `lstm_sequences::layout`.
pub type lstm_layout = u32;
/// As the model's configuration says (`LSTM_BATCH_FIRST` or not).
pub const LSTM_LAYOUT_MODEL: lstm_layout = 0;
/// `[T][B][features]`, whatever the configuration.
pub const LSTM_LAYOUT_TIME_MAJOR: lstm_layout = 1;
/// `[B][T][features]`, whatever the configuration.
pub const LSTM_LAYOUT_BATCH_MAJOR: lstm_layout = 2;

/// `lstm_sequences`: steps, batch, layout, lengths (in this order: the
/// layout comes before the lengths). `struct_size` first; the struct only
/// grows at the end.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct lstm_sequences {
    pub struct_size: usize,
    pub steps: usize,
    pub batch: usize,
    pub layout: u32,
    pub lengths: *const usize,
}

/// `LSTM_SEQUENCES_INIT`.
pub const LSTM_SEQUENCES_INIT: lstm_sequences = lstm_sequences {
    struct_size: size_of::<lstm_sequences>(),
    steps: 0,
    batch: 0,
    layout: LSTM_LAYOUT_MODEL,
    lengths: ptr::null(),
};

/// `lstm_inputs`: what a forward call reads.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct lstm_inputs {
    pub struct_size: usize,
    pub x: *const f32,
    pub h0: *const f32,
    pub c0: *const f32,
}

/// `LSTM_INPUTS_INIT`.
pub const LSTM_INPUTS_INIT: lstm_inputs = lstm_inputs {
    struct_size: size_of::<lstm_inputs>(),
    x: ptr::null(),
    h0: ptr::null(),
    c0: ptr::null(),
};

/// `lstm_outputs`: where a forward call writes (`h_t`, `c_t` are C's `hT`,
/// `cT`, spelled as the positional declarations spell them).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct lstm_outputs {
    pub struct_size: usize,
    pub y: *mut f32,
    pub h_t: *mut f32,
    pub c_t: *mut f32,
}

/// `LSTM_OUTPUTS_INIT`.
pub const LSTM_OUTPUTS_INIT: lstm_outputs = lstm_outputs {
    struct_size: size_of::<lstm_outputs>(),
    y: ptr::null_mut(),
    h_t: ptr::null_mut(),
    c_t: ptr::null_mut(),
};

/* ---- lstm/optim.h ---- */

/// `lstm_optim_kind`.
pub type lstm_optim_kind = c_int;
pub const LSTM_OPTIM_SGD: lstm_optim_kind = 0;
pub const LSTM_OPTIM_ADAGRAD: lstm_optim_kind = 1;
pub const LSTM_OPTIM_RMSPROP: lstm_optim_kind = 2;
pub const LSTM_OPTIM_ADAM: lstm_optim_kind = 3;
pub const LSTM_OPTIM_ADAMW: lstm_optim_kind = 4;

pub const LSTM_OPTIM_NESTEROV: u32 = 0x1;
pub const LSTM_OPTIM_CENTERED: u32 = 0x2;
pub const LSTM_OPTIM_AMSGRAD: u32 = 0x4;
pub const LSTM_OPTIM_MAXIMIZE: u32 = 0x8;

/// `lstm_optim_options`: `struct_size` first; the struct only grows at the end.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct lstm_optim_options {
    pub struct_size: usize,
    pub kind: lstm_optim_kind,
    pub flags: u32,
    pub lr: f64,
    pub weight_decay: f64,
    pub momentum: f64,
    pub dampening: f64,
    pub alpha: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub lr_decay: f64,
    pub initial_accumulator_value: f64,
    pub threads: u32,
}

/// Opaque `lstm_optim`.
#[repr(C)]
pub struct lstm_optim {
    _private: [u8; 0],
}

/* ---- lstm/train.h ---- */

/// `lstm_output_grads`: what a backward call reads (`dh_t`, `dc_t` are C's
/// `dhT`, `dcT`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct lstm_output_grads {
    pub struct_size: usize,
    pub dy: *const f32,
    pub dh_t: *const f32,
    pub dc_t: *const f32,
}

/// `LSTM_OUTPUT_GRADS_INIT`.
pub const LSTM_OUTPUT_GRADS_INIT: lstm_output_grads = lstm_output_grads {
    struct_size: size_of::<lstm_output_grads>(),
    dy: ptr::null(),
    dh_t: ptr::null(),
    dc_t: ptr::null(),
};

/// `lstm_input_grads`: where a backward call writes.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct lstm_input_grads {
    pub struct_size: usize,
    pub dx: *mut f32,
    pub dh0: *mut f32,
    pub dc0: *mut f32,
}

/// `LSTM_INPUT_GRADS_INIT`.
pub const LSTM_INPUT_GRADS_INIT: lstm_input_grads = lstm_input_grads {
    struct_size: size_of::<lstm_input_grads>(),
    dx: ptr::null_mut(),
    dh0: ptr::null_mut(),
    dc0: ptr::null_mut(),
};

extern "C" {
    /* lstm/common.h */
    pub fn lstm_strerror(status: lstm_status) -> *const c_char;
    pub fn lstm_error_message() -> *const c_char;

    /* lstm/version.h */
    pub fn lstm_version_number() -> c_uint;
    pub fn lstm_version_string() -> *const c_char;

    /* lstm/model.h */
    pub fn lstm_config_init(config: *mut lstm_config, struct_size: usize) -> lstm_status;
    pub fn lstm_model_create(config: *const lstm_config, out: *mut *mut lstm_model) -> lstm_status;
    pub fn lstm_model_destroy(model: *mut lstm_model);
    pub fn lstm_model_get_config(model: *const lstm_model, config: *mut lstm_config)
        -> lstm_status;
    pub fn lstm_model_param_count(model: *const lstm_model) -> usize;
    pub fn lstm_model_tensor(
        model: *const lstm_model,
        layer: usize,
        direction: usize,
        tensor: lstm_tensor,
        offset: *mut usize,
        rows: *mut usize,
        cols: *mut usize,
    ) -> lstm_status;
    pub fn lstm_model_params(
        model: *mut lstm_model,
        data: *mut *mut f32,
        count: *mut usize,
    ) -> lstm_status;
    pub fn lstm_model_grads(
        model: *mut lstm_model,
        data: *mut *mut f32,
        count: *mut usize,
    ) -> lstm_status;
    pub fn lstm_model_get_params(
        model: *const lstm_model,
        dst: *mut f32,
        count: usize,
    ) -> lstm_status;
    pub fn lstm_model_set_params(
        model: *mut lstm_model,
        src: *const f32,
        count: usize,
    ) -> lstm_status;
    pub fn lstm_model_get_grads(
        model: *const lstm_model,
        dst: *mut f32,
        count: usize,
    ) -> lstm_status;
    pub fn lstm_model_zero_grads(model: *mut lstm_model) -> lstm_status;
    pub fn lstm_model_init(model: *mut lstm_model, seed: u64, flags: u32) -> lstm_status;

    pub fn lstm_workspace_create(
        model: *const lstm_model,
        out: *mut *mut lstm_workspace,
    ) -> lstm_status;
    pub fn lstm_workspace_destroy(workspace: *mut lstm_workspace);
    pub fn lstm_workspace_size(
        model: *const lstm_model,
        mode: lstm_mode,
        seq_len: usize,
        batch: usize,
        bytes: *mut usize,
    ) -> lstm_status;
    pub fn lstm_workspace_reserve(
        workspace: *mut lstm_workspace,
        mode: lstm_mode,
        seq_len: usize,
        batch: usize,
    ) -> lstm_status;
    pub fn lstm_workspace_set_seed(workspace: *mut lstm_workspace, seed: u64) -> lstm_status;

    /// Since liblstm 0.3.0 (version node `LSTM_1.2`), as are the other
    /// `_init` functions, the calls that take argument structs and
    /// `lstm_optim_load`.
    pub fn lstm_sequences_init(args: *mut lstm_sequences, struct_size: usize) -> lstm_status;
    pub fn lstm_inputs_init(args: *mut lstm_inputs, struct_size: usize) -> lstm_status;
    pub fn lstm_outputs_init(args: *mut lstm_outputs, struct_size: usize) -> lstm_status;
    pub fn lstm_model_infer(
        model: *const lstm_model,
        workspace: *mut lstm_workspace,
        sequences: *const lstm_sequences,
        inputs: *const lstm_inputs,
        outputs: *const lstm_outputs,
    ) -> lstm_status;
    /// The older, positional form of `lstm_model_infer` (`LSTM_1.0`).
    pub fn lstm_model_forward(
        model: *const lstm_model,
        workspace: *mut lstm_workspace,
        seq_len: usize,
        batch: usize,
        lengths: *const usize,
        x: *const f32,
        h0: *const f32,
        c0: *const f32,
        y: *mut f32,
        h_t: *mut f32,
        c_t: *mut f32,
    ) -> lstm_status;
    /// Since liblstm 0.2.0 (version node `LSTM_1.1`).
    pub fn lstm_workspace_keep_weights(workspace: *mut lstm_workspace, keep: c_int) -> lstm_status;
    /// Since liblstm 0.7.0 (version node `LSTM_1.6`).
    pub fn lstm_workspace_set_precision(
        workspace: *mut lstm_workspace,
        precision: lstm_precision,
    ) -> lstm_status;
    /// Since liblstm 0.8.0 (version node `LSTM_1.7`): `LSTM_PRECISION_FP32`
    /// or `LSTM_PRECISION_BF16` for the training calls on the workspace;
    /// `LSTM_E_ARG` for `LSTM_PRECISION_INT8`.
    pub fn lstm_workspace_set_training_precision(
        workspace: *mut lstm_workspace,
        precision: lstm_precision,
    ) -> lstm_status;

    pub fn lstm_state_create(
        model: *const lstm_model,
        batch: usize,
        out: *mut *mut lstm_state,
    ) -> lstm_status;
    pub fn lstm_state_destroy(state: *mut lstm_state);
    pub fn lstm_state_reset(state: *mut lstm_state) -> lstm_status;
    pub fn lstm_state_get(state: *const lstm_state, h: *mut f32, c: *mut f32) -> lstm_status;
    pub fn lstm_state_set(state: *mut lstm_state, h: *const f32, c: *const f32) -> lstm_status;
    pub fn lstm_model_infer_stream(
        model: *const lstm_model,
        state: *mut lstm_state,
        sequences: *const lstm_sequences,
        inputs: *const lstm_inputs,
        outputs: *const lstm_outputs,
    ) -> lstm_status;
    /// The older, positional form of `lstm_model_infer_stream` (`LSTM_1.0`).
    pub fn lstm_model_stream(
        model: *const lstm_model,
        state: *mut lstm_state,
        steps: usize,
        x: *const f32,
        y: *mut f32,
    ) -> lstm_status;
    pub fn lstm_model_step(
        model: *const lstm_model,
        state: *mut lstm_state,
        x_t: *const f32,
        y_t: *mut f32,
    ) -> lstm_status;
    /// Since liblstm 0.2.0 (version node `LSTM_1.1`).
    pub fn lstm_state_keep_weights(state: *mut lstm_state, keep: c_int) -> lstm_status;
    /// Since liblstm 0.7.0 (version node `LSTM_1.6`).
    pub fn lstm_state_set_precision(
        state: *mut lstm_state,
        precision: lstm_precision,
    ) -> lstm_status;

    /* lstm/train.h */
    pub fn lstm_model_train_forward(
        model: *const lstm_model,
        workspace: *mut lstm_workspace,
        sequences: *const lstm_sequences,
        inputs: *const lstm_inputs,
        outputs: *const lstm_outputs,
    ) -> lstm_status;
    pub fn lstm_model_train_chunk(
        model: *const lstm_model,
        workspace: *mut lstm_workspace,
        state: *mut lstm_state,
        sequences: *const lstm_sequences,
        inputs: *const lstm_inputs,
        outputs: *const lstm_outputs,
    ) -> lstm_status;
    pub fn lstm_output_grads_init(args: *mut lstm_output_grads, struct_size: usize) -> lstm_status;
    pub fn lstm_input_grads_init(args: *mut lstm_input_grads, struct_size: usize) -> lstm_status;
    pub fn lstm_model_train_backward(
        model: *mut lstm_model,
        workspace: *mut lstm_workspace,
        output_grads: *const lstm_output_grads,
        input_grads: *const lstm_input_grads,
    ) -> lstm_status;
    /// The older, positional forms (`LSTM_1.0`) of `lstm_model_train_forward`,
    /// `lstm_model_train_chunk` and `lstm_model_train_backward`.
    pub fn lstm_model_forward_train(
        model: *const lstm_model,
        workspace: *mut lstm_workspace,
        seq_len: usize,
        batch: usize,
        lengths: *const usize,
        x: *const f32,
        h0: *const f32,
        c0: *const f32,
        y: *mut f32,
        h_t: *mut f32,
        c_t: *mut f32,
    ) -> lstm_status;
    pub fn lstm_model_forward_train_chunk(
        model: *const lstm_model,
        workspace: *mut lstm_workspace,
        state: *mut lstm_state,
        steps: usize,
        x: *const f32,
        y: *mut f32,
    ) -> lstm_status;
    pub fn lstm_model_backward(
        model: *mut lstm_model,
        workspace: *mut lstm_workspace,
        dy: *const f32,
        dh_t: *const f32,
        dc_t: *const f32,
        dx: *mut f32,
        dh0: *mut f32,
        dc0: *mut f32,
    ) -> lstm_status;

    /* lstm/optim.h */
    pub fn lstm_optim_options_init(
        options: *mut lstm_optim_options,
        struct_size: usize,
        kind: lstm_optim_kind,
    ) -> lstm_status;
    pub fn lstm_optim_create(
        options: *const lstm_optim_options,
        out: *mut *mut lstm_optim,
    ) -> lstm_status;
    pub fn lstm_optim_destroy(optim: *mut lstm_optim);
    pub fn lstm_optim_add_buffer(
        optim: *mut lstm_optim,
        params: *mut f32,
        grads: *mut f32,
        count: usize,
    ) -> lstm_status;
    pub fn lstm_optim_add_model(optim: *mut lstm_optim, model: *mut lstm_model) -> lstm_status;
    pub fn lstm_optim_param_count(optim: *const lstm_optim) -> usize;
    pub fn lstm_optim_step(optim: *mut lstm_optim) -> lstm_status;
    pub fn lstm_optim_zero_grads(optim: *mut lstm_optim) -> lstm_status;
    pub fn lstm_optim_clip_grad_norm(
        optim: *mut lstm_optim,
        max_norm: f64,
        total_norm: *mut f64,
    ) -> lstm_status;
    pub fn lstm_optim_clip_grad_value(optim: *mut lstm_optim, clip_value: f64) -> lstm_status;
    pub fn lstm_optim_get_lr(optim: *const lstm_optim, lr: *mut f64) -> lstm_status;
    pub fn lstm_optim_set_lr(optim: *mut lstm_optim, lr: f64) -> lstm_status;
    pub fn lstm_optim_step_count(optim: *const lstm_optim, steps: *mut u64) -> lstm_status;
    pub fn lstm_optim_state_size(optim: *const lstm_optim, bytes: *mut usize) -> lstm_status;
    pub fn lstm_optim_save_state(
        optim: *const lstm_optim,
        dst: *mut c_void,
        bytes: usize,
    ) -> lstm_status;
    pub fn lstm_optim_load_state(
        optim: *mut lstm_optim,
        src: *const c_void,
        bytes: usize,
    ) -> lstm_status;
    pub fn lstm_schedule_step(
        base_lr: f64,
        gamma: f64,
        step_size: u64,
        epoch: u64,
        lr: *mut f64,
    ) -> lstm_status;
    pub fn lstm_schedule_cosine(
        base_lr: f64,
        eta_min: f64,
        t_max: u64,
        epoch: u64,
        lr: *mut f64,
    ) -> lstm_status;

    /* lstm/io.h */
    /// Since liblstm 0.7.0 (version node `LSTM_1.6`).
    pub fn lstm_model_save_quantized_buffer(
        model: *const lstm_model,
        precision: lstm_precision,
        buffer: *mut c_void,
        capacity: usize,
        size: *mut usize,
    ) -> lstm_status;
    /// Since liblstm 0.7.0 (version node `LSTM_1.6`).
    pub fn lstm_model_save_quantized(
        model: *const lstm_model,
        precision: lstm_precision,
        path: *const c_char,
    ) -> lstm_status;
    pub fn lstm_model_save_buffer(
        model: *const lstm_model,
        optim: *const lstm_optim,
        buffer: *mut c_void,
        capacity: usize,
        size: *mut usize,
    ) -> lstm_status;
    pub fn lstm_model_save(
        model: *const lstm_model,
        optim: *const lstm_optim,
        path: *const c_char,
    ) -> lstm_status;
    pub fn lstm_model_load_buffer(
        buffer: *const c_void,
        size: usize,
        out: *mut *mut lstm_model,
    ) -> lstm_status;
    pub fn lstm_model_load(path: *const c_char, out: *mut *mut lstm_model) -> lstm_status;
    pub fn lstm_optim_load_buffer(
        optim: *mut lstm_optim,
        buffer: *const c_void,
        size: usize,
    ) -> lstm_status;
    pub fn lstm_optim_load(optim: *mut lstm_optim, path: *const c_char) -> lstm_status;
    /// The older name of `lstm_optim_load` (`LSTM_1.0`).
    pub fn lstm_optim_load_file(optim: *mut lstm_optim, path: *const c_char) -> lstm_status;
}

/* ---- lstm/embedding.h, lstm/head.h, lstm/network.h ---- */

/// Opaque `lstm_embedding`.
#[repr(C)]
pub struct lstm_embedding {
    _private: [u8; 0],
}

/// Opaque `lstm_dense`.
#[repr(C)]
pub struct lstm_dense {
    _private: [u8; 0],
}

/// Opaque `lstm_network`.
#[repr(C)]
pub struct lstm_network {
    _private: [u8; 0],
}

pub const LSTM_EMBEDDING_PADDING: u32 = 0x1;

/// `lstm_embedding_config`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct lstm_embedding_config {
    pub struct_size: usize,
    pub num_embeddings: usize,
    pub embedding_dim: usize,
    pub flags: u32,
    pub padding_idx: i64,
}

/// `lstm_head_placement`, in `lstm_network_config::head`.
pub const LSTM_HEAD_NONE: u32 = 0;
pub const LSTM_HEAD_EVERY_STEP: u32 = 1;
pub const LSTM_HEAD_LAST_STEP: u32 = 2;

/// `lstm_loss_kind`, in `lstm_network_config::loss`.
pub const LSTM_LOSS_NONE: u32 = 0;
pub const LSTM_LOSS_CROSS_ENTROPY: u32 = 1;
pub const LSTM_LOSS_BCE_WITH_LOGITS: u32 = 2;
pub const LSTM_LOSS_MSE: u32 = 3;

/// `lstm_network_config`: the parts' configurations and how they are joined.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct lstm_network_config {
    pub struct_size: usize,
    pub embedding: *const lstm_embedding_config,
    pub lstm: *const lstm_config,
    pub head: u32,
    pub loss: u32,
    pub head_size: usize,
}

/// `lstm_network_inputs`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct lstm_network_inputs {
    pub struct_size: usize,
    pub tokens: *const i64,
    pub features: *const f32,
    pub h0: *const f32,
    pub c0: *const f32,
}

pub const LSTM_NETWORK_INPUTS_INIT: lstm_network_inputs = lstm_network_inputs {
    struct_size: size_of::<lstm_network_inputs>(),
    tokens: ptr::null(),
    features: ptr::null(),
    h0: ptr::null(),
    c0: ptr::null(),
};

/// `lstm_network_outputs` (`h_t`, `c_t` are C's `hT`, `cT`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct lstm_network_outputs {
    pub struct_size: usize,
    pub output: *mut f32,
    pub h_t: *mut f32,
    pub c_t: *mut f32,
}

pub const LSTM_NETWORK_OUTPUTS_INIT: lstm_network_outputs = lstm_network_outputs {
    struct_size: size_of::<lstm_network_outputs>(),
    output: ptr::null_mut(),
    h_t: ptr::null_mut(),
    c_t: ptr::null_mut(),
};

/// `lstm_targets`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct lstm_targets {
    pub struct_size: usize,
    pub classes: *const i32,
    pub values: *const f32,
    pub grad: *const f32,
    pub mask: *const u8,
}

pub const LSTM_TARGETS_INIT: lstm_targets = lstm_targets {
    struct_size: size_of::<lstm_targets>(),
    classes: ptr::null(),
    values: ptr::null(),
    grad: ptr::null(),
    mask: ptr::null(),
};

/// `lstm_meta_kind`.
pub const LSTM_META_TEXT: u32 = 0;
pub const LSTM_META_BYTES: u32 = 1;

extern "C" {
    pub fn lstm_network_create(
        config: *const lstm_network_config,
        out: *mut *mut lstm_network,
    ) -> lstm_status;
    pub fn lstm_network_destroy(network: *mut lstm_network);
    pub fn lstm_network_get_config(
        network: *const lstm_network,
        config: *mut lstm_network_config,
    ) -> lstm_status;
    pub fn lstm_network_embedding(network: *mut lstm_network) -> *mut lstm_embedding;
    pub fn lstm_network_model(network: *mut lstm_network) -> *mut lstm_model;
    pub fn lstm_network_head(network: *mut lstm_network) -> *mut lstm_dense;
    pub fn lstm_network_param_count(network: *const lstm_network) -> usize;
    pub fn lstm_network_init(network: *mut lstm_network, seed: u64, flags: u32) -> lstm_status;
    pub fn lstm_network_zero_grads(network: *mut lstm_network) -> lstm_status;
    pub fn lstm_optim_add_network(
        optim: *mut lstm_optim,
        network: *mut lstm_network,
    ) -> lstm_status;
    pub fn lstm_network_infer(
        network: *const lstm_network,
        workspace: *mut lstm_workspace,
        sequences: *const lstm_sequences,
        inputs: *const lstm_network_inputs,
        outputs: *const lstm_network_outputs,
    ) -> lstm_status;
    pub fn lstm_network_loss(
        network: *const lstm_network,
        sequences: *const lstm_sequences,
        output: *const f32,
        targets: *const lstm_targets,
        loss: *mut f64,
    ) -> lstm_status;
    pub fn lstm_network_train_forward(
        network: *const lstm_network,
        workspace: *mut lstm_workspace,
        sequences: *const lstm_sequences,
        inputs: *const lstm_network_inputs,
        outputs: *const lstm_network_outputs,
    ) -> lstm_status;
    pub fn lstm_network_train_backward(
        network: *mut lstm_network,
        workspace: *mut lstm_workspace,
        targets: *const lstm_targets,
        loss: *mut f64,
    ) -> lstm_status;
    pub fn lstm_network_set_meta(
        network: *mut lstm_network,
        key: *const c_char,
        kind: u32,
        value: *const c_void,
        size: usize,
    ) -> lstm_status;
    pub fn lstm_network_get_meta(
        network: *const lstm_network,
        key: *const c_char,
        kind: *mut u32,
        value: *mut *const c_void,
        size: *mut usize,
    ) -> lstm_status;
    pub fn lstm_network_remove_meta(network: *mut lstm_network, key: *const c_char) -> lstm_status;
    pub fn lstm_network_meta_count(network: *const lstm_network) -> usize;
    pub fn lstm_network_meta_key(
        network: *const lstm_network,
        index: usize,
        key: *mut *const c_char,
    ) -> lstm_status;
    /// Since liblstm 0.7.0 (version node `LSTM_1.6`).
    pub fn lstm_network_save_quantized_buffer(
        network: *const lstm_network,
        precision: lstm_precision,
        buffer: *mut c_void,
        capacity: usize,
        size: *mut usize,
    ) -> lstm_status;
    /// Since liblstm 0.7.0 (version node `LSTM_1.6`).
    pub fn lstm_network_save_quantized(
        network: *const lstm_network,
        precision: lstm_precision,
        path: *const c_char,
    ) -> lstm_status;
    pub fn lstm_network_save_buffer(
        network: *const lstm_network,
        optim: *const lstm_optim,
        buffer: *mut c_void,
        capacity: usize,
        size: *mut usize,
    ) -> lstm_status;
    pub fn lstm_network_save(
        network: *const lstm_network,
        optim: *const lstm_optim,
        path: *const c_char,
    ) -> lstm_status;
    pub fn lstm_network_load_buffer(
        buffer: *const c_void,
        size: usize,
        out: *mut *mut lstm_network,
    ) -> lstm_status;
    pub fn lstm_network_load(path: *const c_char, out: *mut *mut lstm_network) -> lstm_status;
}
