//! The C API of Arm's CMSIS-NN, for the programs that measure edgeslim against it (`opbench`,
//! `bench`).
//! Only with `--cfg cmsis_nn`, which `build_cmsis_nn.rs` sets when `CMSIS_NN_DIR` names a
//! CMSIS-NN checkout and it compiled the library: CMSIS-NN is a measuring instrument, never part
//! of the firmware. The structs mirror `Include/arm_nn_types.h` (`#[repr(C)]`, `int32_t`
//! fields).

use core::ffi::c_void;

/// `cmsis_nn_context`: the scratch buffer.
#[repr(C)]
pub struct Context {
    pub buf: *mut c_void,
    pub size: i32,
}

/// `cmsis_nn_tile`.
#[repr(C)]
pub struct Tile {
    pub w: i32,
    pub h: i32,
}

/// `cmsis_nn_dims`.
#[repr(C)]
pub struct Dims {
    pub n: i32,
    pub h: i32,
    pub w: i32,
    pub c: i32,
}

/// `cmsis_nn_per_channel_quant_params`.
#[repr(C)]
pub struct PerChannel {
    pub multiplier: *const i32,
    pub shift: *const i32,
}

/// `cmsis_nn_per_tensor_quant_params`.
#[repr(C)]
pub struct PerTensor {
    pub multiplier: i32,
    pub shift: i32,
}

/// `cmsis_nn_activation`.
#[repr(C)]
pub struct Activation {
    pub min: i32,
    pub max: i32,
}

/// `cmsis_nn_conv_params`.
#[repr(C)]
pub struct ConvParams {
    pub input_offset: i32,
    pub output_offset: i32,
    pub stride: Tile,
    pub padding: Tile,
    pub dilation: Tile,
    pub activation: Activation,
}

/// `cmsis_nn_dw_conv_params`.
#[repr(C)]
pub struct DwParams {
    pub input_offset: i32,
    pub output_offset: i32,
    pub ch_mult: i32,
    pub stride: Tile,
    pub padding: Tile,
    pub dilation: Tile,
    pub activation: Activation,
}

/// `cmsis_nn_fc_params`.
#[repr(C)]
pub struct FcParams {
    pub input_offset: i32,
    pub filter_offset: i32,
    pub output_offset: i32,
    pub activation: Activation,
}

unsafe extern "C" {
    pub fn arm_convolve_wrapper_s8_get_buffer_size(
        p: *const ConvParams,
        input: *const Dims,
        filter: *const Dims,
        output: *const Dims,
    ) -> i32;
    pub fn arm_convolve_wrapper_s8(
        ctx: *const Context,
        p: *const ConvParams,
        q: *const PerChannel,
        in_dims: *const Dims,
        input: *const i8,
        f_dims: *const Dims,
        filter: *const i8,
        b_dims: *const Dims,
        bias: *const i32,
        out_dims: *const Dims,
        output: *mut i8,
    ) -> i32;
    pub fn arm_depthwise_conv_wrapper_s8_get_buffer_size(
        p: *const DwParams,
        input: *const Dims,
        filter: *const Dims,
        output: *const Dims,
    ) -> i32;
    pub fn arm_depthwise_conv_wrapper_s8(
        ctx: *const Context,
        p: *const DwParams,
        q: *const PerChannel,
        in_dims: *const Dims,
        input: *const i8,
        f_dims: *const Dims,
        filter: *const i8,
        b_dims: *const Dims,
        bias: *const i32,
        out_dims: *const Dims,
        output: *mut i8,
    ) -> i32;
    /// The per-row kernel sums `arm_fully_connected_s8` reads from its context buffer on
    /// MVE builds (`ARM_MATH_MVEI`): `sum(w) * lhs_offset + bias` per output row.
    pub fn arm_vector_sum_s8(
        sums: *mut i32,
        cols: i32,
        rows: i32,
        data: *const i8,
        lhs_offset: i32,
        rhs_offset: i32,
        bias: *const i32,
    ) -> i32;
    pub fn arm_fully_connected_s8(
        ctx: *const Context,
        p: *const FcParams,
        q: *const PerTensor,
        in_dims: *const Dims,
        input: *const i8,
        f_dims: *const Dims,
        filter: *const i8,
        b_dims: *const Dims,
        bias: *const i32,
        out_dims: *const Dims,
        output: *mut i8,
    ) -> i32;
    pub fn arm_fully_connected_per_channel_s8(
        ctx: *const Context,
        p: *const FcParams,
        q: *const PerChannel,
        in_dims: *const Dims,
        input: *const i8,
        f_dims: *const Dims,
        filter: *const i8,
        b_dims: *const Dims,
        bias: *const i32,
        out_dims: *const Dims,
        output: *mut i8,
    ) -> i32;
}

/// `cmsis_nn_dims` from sizes.
pub fn dims(n: usize, h: usize, w: usize, c: usize) -> Dims {
    Dims {
        n: n as i32,
        h: h as i32,
        w: w as i32,
        c: c as i32,
    }
}

/// A tile from `[vertical, horizontal]` sizes.
pub fn tile(hw: [usize; 2]) -> Tile {
    Tile {
        h: hw[0] as i32,
        w: hw[1] as i32,
    }
}
