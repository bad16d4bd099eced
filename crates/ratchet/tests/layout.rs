//! The binary's source stays free of test helpers: `ratchet bench` and `ratchet demo` are
//! user commands, so nothing in `src/` may use `ratchet_scratch::testing` (issue 11).

use std::path::Path;

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn no_source_file_of_the_binary_uses_the_test_harness() {
    let mut files = Vec::new();
    rust_files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    assert!(!files.is_empty());
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(
            !text.contains("ratchet_scratch::testing"),
            "{} uses ratchet_scratch::testing; use ratchet_scratch::connect or the CLI's own code",
            file.display()
        );
    }
}
