//! Makes the binary find libtorch without LD_LIBRARY_PATH, and keeps libtorch's
//! CUDA part linked so `tch::Cuda::is_available()` is true on a GPU machine.
use std::env;

fn main() {
    // torch-sys (links = "tch") exports the libtorch lib dir it linked against.
    let Some(lib) = env::var_os("DEP_TCH_LIBTORCH_LIB") else {
        println!("cargo:warning=DEP_TCH_LIBTORCH_LIB unset: no rpath added");
        return;
    };
    let lib = std::path::PathBuf::from(lib);
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    // The linker drops libraries the binary uses no symbol of (--as-needed);
    // libtorch_cuda registers the CUDA backend only when it is loaded, so force it.
    if lib.join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
    }
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
}
