use closewait::diagnose_cmd::{run_to, DiagnoseArgs};
use std::path::PathBuf;

#[test]
fn scratch() {
    let name = std::env::var("CAP").unwrap_or("12-pool-leak-many.pcap".into());
    let mut args = DiagnoseArgs::for_files(&[PathBuf::from(format!("captures/{name}"))]);
    if let Ok(f) = std::env::var("FMT") { args.format = match f.as_str() { "json" => closewait::diagnose::render::Format::Json, "md" => closewait::diagnose::render::Format::Markdown, _ => closewait::diagnose::render::Format::Text }; }
    let mut out = Vec::new();
    run_to(&args, &mut out).unwrap();
    println!("{}", String::from_utf8(out).unwrap());
}
