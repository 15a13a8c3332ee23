//! Export: the loss chart and the heatmap as PNG and SVG under <run>/exports.

mod tui_support;

use tui_support::*;

#[test]
fn exports_png_and_svg() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = busy_app();
    let files = headsup::ui::export::export(&app, dir.path()).expect("export");
    assert_eq!(files.len(), 4, "{files:?}");
    for f in &files {
        assert!(f.starts_with(dir.path().join("exports")), "{f:?}");
        let bytes = std::fs::read(f).expect("written");
        assert!(bytes.len() > 100, "{f:?} is too small");
        match f.extension().and_then(|e| e.to_str()) {
            Some("png") => assert_eq!(&bytes[1..4], b"PNG"),
            Some("svg") => assert!(String::from_utf8_lossy(&bytes).contains("<svg")),
            other => panic!("unexpected file type {other:?}"),
        }
    }
    let svg = std::fs::read_to_string(dir.path().join("exports/loss-500.svg")).expect("loss svg");
    assert!(svg.contains("testrun loss"));
}

#[test]
fn export_without_attention_writes_the_loss_chart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = app();
    let files = headsup::ui::export::export(&app, dir.path()).expect("export");
    assert_eq!(files.len(), 2);
}
