//! LoRA and Bit-LoRA adapters: the layers and their configuration, sets of weighted
//! adapters, PEFT's on-disk format, wiring them into a model (attach, fold, merge through
//! `model::linear::merge`), and the one model loader, which needs both a model and its
//! adapters.
pub mod attach;
pub mod bitlora;
pub mod load;
pub mod lora;
pub mod peft;
