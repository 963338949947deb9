fn main() {
    std::process::exit(stylerl::cli::main());
}
