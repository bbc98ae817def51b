fn main() {
    std::process::exit(closewait::cli::main());
}
