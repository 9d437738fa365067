//! Builds the dashboard (`npm ci && npm run build` in `dashboards/`) so that the
//! binary can embed `dashboards/dist`. Skipped when `CRMPULSE_SKIP_UI_BUILD` is set or
//! when the sources have not changed; without npm a placeholder page is embedded and
//! a build warning says how to get the real one.

use std::path::Path;
use std::process::Command;

fn main() {
    let ui = Path::new(env!("CARGO_MANIFEST_DIR")).join("../dashboards");
    for watched in [
        "src",
        "index.html",
        "package.json",
        "package-lock.json",
        "vite.config.ts",
    ] {
        println!("cargo:rerun-if-changed={}", ui.join(watched).display());
    }
    println!("cargo:rerun-if-env-changed=CRMPULSE_SKIP_UI_BUILD");
    let dist = ui.join("dist");
    if std::env::var_os("CRMPULSE_SKIP_UI_BUILD").is_none() && ui.join("package.json").exists() {
        let npm = |args: &[&str]| {
            Command::new("npm")
                .args(args)
                .current_dir(&ui)
                .status()
                .map(|s| s.success())
        };
        let installed = ui.join("node_modules").exists()
            || matches!(npm(&["ci", "--no-audit", "--no-fund"]), Ok(true));
        if !(installed && matches!(npm(&["run", "build"]), Ok(true))) {
            println!(
                "cargo:warning=dashboard build failed (is npm installed?); embedding a placeholder page"
            );
        }
    }
    if !dist.join("index.html").exists() {
        std::fs::create_dir_all(&dist).expect("create dashboards/dist");
        std::fs::write(
            dist.join("index.html"),
            "<!doctype html><title>crmpulse</title><p>The dashboard was not built: install Node.js and npm, then rebuild crmpulse.</p>",
        )
        .expect("write placeholder");
    }
}
