//! Compile a model and print the report as JSON: `cargo run --release -p edgeslim-compiler
//! --example compile_time -- MODEL.onnx [CALIB.npy]` (measures compile time without the CLI).

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let model = args
        .next()
        .ok_or_else(|| anyhow::anyhow!("usage: compile_time MODEL.onnx [CALIB.npy]"))?;
    let opts = edgeslim_compiler::CompileOptions {
        calib: args.next().map(Into::into),
        ..Default::default()
    };
    let c = edgeslim_compiler::compile(std::path::Path::new(&model), &opts)?;
    println!("{}", serde_json::to_string_pretty(&c.report)?);
    Ok(())
}
