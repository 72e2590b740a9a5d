use super::*;

struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("xtask-page-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("static")).expect("scratch");
        std::fs::create_dir_all(dir.join("bindgen")).expect("scratch");
        Scratch(dir)
    }

    fn put(&self, path: &str, text: &str) {
        std::fs::write(self.0.join(path), text).expect("writing a source");
    }

    fn sources(&self, wasm: &str) {
        self.put(
            "static/index.html",
            "<link rel=\"stylesheet\" href=\"style.css\">\n\
             <script type=\"module\" src=\"loader.js\"></script>\n",
        );
        self.put(
            "static/loader.js",
            "// The loader.\nimport init, { start } from './web_terminal.js';\n  // On demand:\n\
             const files = () => import('./files.js');\n\
             const settings = () => import('./settings.js');\n\
             const share = () => import('./share.js');\n",
        );
        self.put("static/files.js", "export function upload() {}\n");
        self.put("static/settings.js", "export function toggle() {}\n");
        self.put("static/share.js", "export async function redeem() {}\n");
        self.put("static/style.css", "body { color: black; }\n");
        self.put("static/manifest.webmanifest", "{\"start_url\": \"/\"}\n");
        self.put("static/icon.svg", "<svg></svg>\n");
        self.put(
            "bindgen/web_terminal.js",
            "module_or_path = new URL('web_terminal_bg.wasm', import.meta.url);\n",
        );
        self.put("bindgen/web_terminal_bg.wasm", wasm);
        self.put(
            "static/play.html",
            "<!-- The player. -->\n<link rel=\"stylesheet\" href=\"style.css\">\n\
             <link rel=\"stylesheet\" href=\"play.css\">\n\
             <script type=\"module\" src=\"play.js\"></script>\n",
        );
        self.put("static/play.css", "#stage { color: white; }\n");
        self.put(
            "static/play.js",
            "// The player's script.\nimport init, { Player } from './player.js';\n",
        );
        self.put(
            "bindgen/player.js",
            "module_or_path = new URL('player_bg.wasm', import.meta.url);\n",
        );
        self.put("bindgen/player_bg.wasm", &format!("player {wasm}"));
    }

    fn assemble(&self) -> Vec<BuiltFile> {
        assemble(&self.0.join("static"), &self.0.join("bindgen"), &self.out())
            .expect("assembling the page")
    }

    fn out(&self) -> PathBuf {
        self.0.join("dist")
    }

    fn text(&self, name: &str) -> String {
        std::fs::read_to_string(self.out().join(name)).expect("reading the output")
    }

    fn assets(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.out().join(ASSETS))
            .expect("listing assets")
            .map(|entry| {
                entry
                    .expect("an entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        names.sort();
        names
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The asset whose name starts with `stem.` and has no compression suffix.
fn asset(names: &[String], stem: &str, ext: &str) -> String {
    let found: Vec<&String> = names
        .iter()
        .filter(|name| name.starts_with(&format!("{stem}.")) && name.ends_with(&format!(".{ext}")))
        .collect();
    assert_eq!(found.len(), 1, "one {stem}.*.{ext} in {names:?}");
    found[0].clone()
}

#[test]
fn every_reference_names_a_hashed_file_that_exists() {
    let scratch = Scratch::new("refs");
    scratch.sources(&"wasm bytes ".repeat(100));
    scratch.assemble();
    let names = scratch.assets();
    let wasm = asset(&names, "web_terminal_bg", "wasm");
    let glue = asset(&names, "web_terminal", "js");
    let loader = asset(&names, "loader", "js");
    let style = asset(&names, "style", "css");
    for name in [&wasm, &glue, &loader, &style] {
        let hash = name.split('.').nth(1).expect("a hash");
        assert_eq!(hash.len(), 16, "{name}");
        assert!(hash.bytes().all(|b| b.is_ascii_hexdigit()), "{name}");
    }
    let index = scratch.text("index.html");
    assert!(
        index.contains(&format!("href=\"assets/{style}\"")),
        "{index}"
    );
    assert!(
        index.contains(&format!("src=\"assets/{loader}\"")),
        "{index}"
    );
    let files = asset(&names, "files", "js");
    let loader_text = scratch.text(&format!("{ASSETS}/{loader}"));
    assert!(
        loader_text.contains(&format!("'./{glue}'")),
        "{loader_text}"
    );
    assert!(
        loader_text.contains(&format!("import('./{files}')")),
        "{loader_text}"
    );
    let settings = asset(&names, "settings", "js");
    assert!(
        loader_text.contains(&format!("import('./{settings}')")),
        "{loader_text}"
    );
    let share = asset(&names, "share", "js");
    assert!(
        loader_text.contains(&format!("import('./{share}')")),
        "{loader_text}"
    );
    assert!(!loader_text.contains("//"), "comments kept: {loader_text}");
    let glue_text = scratch.text(&format!("{ASSETS}/{glue}"));
    assert!(
        glue_text.contains(&format!("new URL('{wasm}'")),
        "{glue_text}"
    );
    assert!(!glue_text.contains("'web_terminal_bg.wasm'"));

    // The player: its page, its script, its glue and its wasm.
    let play = scratch.text("play.html");
    let play_script = asset(&names, "play", "js");
    assert!(play.contains(&format!("href=\"assets/{style}\"")), "{play}");
    assert!(
        play.contains(&format!("src=\"assets/{play_script}\"")),
        "{play}"
    );
    assert!(!play.contains("<!--"), "comments kept: {play}");
    let play_style = asset(&names, "play", "css");
    assert!(
        play.contains(&format!("href=\"assets/{play_style}\"")),
        "{play}"
    );
    let player_glue = asset(&names, "player", "js");
    let player_wasm = asset(&names, "player_bg", "wasm");
    let script_text = scratch.text(&format!("{ASSETS}/{play_script}"));
    assert!(
        script_text.contains(&format!("'./{player_glue}'")),
        "{script_text}"
    );
    assert!(!script_text.contains("//"), "comments kept: {script_text}");
    let player_glue_text = scratch.text(&format!("{ASSETS}/{player_glue}"));
    assert!(
        player_glue_text.contains(&format!("new URL('{player_wasm}'")),
        "{player_glue_text}"
    );
    assert!(
        !loader_text.contains("player"),
        "the terminal's loader must not load the player: {loader_text}"
    );
}

#[test]
fn a_changed_wasm_renames_everything_that_leads_to_it_and_leaves_no_stale_file() {
    let scratch = Scratch::new("stale");
    scratch.sources(&"first wasm ".repeat(100));
    scratch.assemble();
    let before = scratch.assets();
    scratch.sources(&"second wasm ".repeat(100));
    scratch.assemble();
    let after = scratch.assets();
    for (stem, ext) in [
        ("web_terminal_bg", "wasm"),
        ("web_terminal", "js"),
        ("loader", "js"),
    ] {
        assert_ne!(
            asset(&before, stem, ext),
            asset(&after, stem, ext),
            "{stem}"
        );
    }
    assert_eq!(
        asset(&before, "style", "css"),
        asset(&after, "style", "css")
    );
    let current: Vec<String> = [
        ("web_terminal_bg", "wasm"),
        ("web_terminal", "js"),
        ("loader", "js"),
        ("style", "css"),
        ("files", "js"),
        ("settings", "js"),
        ("share", "js"),
        ("play", "js"),
        ("play", "css"),
        ("player", "js"),
        ("player_bg", "wasm"),
    ]
    .iter()
    .map(|(stem, ext)| asset(&after, stem, ext))
    .collect();
    for name in &after {
        let base = name.trim_end_matches(".br").trim_end_matches(".gz");
        assert!(
            current.iter().any(|file| file == base),
            "{name} survived a rebuild"
        );
    }
}

#[test]
fn compressed_siblings_decode_to_the_file() {
    let scratch = Scratch::new("compress");
    scratch.sources(&"some wasm that compresses well ".repeat(200));
    let built = scratch.assemble();
    let index = built
        .iter()
        .find(|file| file.name == "index.html")
        .expect("index.html");
    assert!(index.brotli.is_some() && index.gzip.is_some(), "{index:?}");
    for file in &built {
        let original = std::fs::read(scratch.out().join(&file.name)).expect("the file");
        if file.brotli.is_some() {
            let br = std::fs::read(scratch.out().join(format!("{}.br", file.name))).expect(".br");
            let mut decoded = Vec::new();
            brotli::BrotliDecompress(&mut &br[..], &mut decoded).expect("valid brotli");
            assert_eq!(decoded, original, "{}.br", file.name);
        }
        if file.gzip.is_some() {
            let gz = std::fs::read(scratch.out().join(format!("{}.gz", file.name))).expect(".gz");
            let mut decoded = Vec::new();
            std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut decoded)
                .expect("valid gzip");
            assert_eq!(decoded, original, "{}.gz", file.name);
        }
    }
}

#[test]
fn a_page_whose_references_changed_shape_fails_the_build() {
    let scratch = Scratch::new("shape");
    scratch.sources("wasm");
    scratch.put(
        "static/loader.js",
        "import init from './pkg/web_terminal.js';\n",
    );
    let result = assemble(
        &scratch.0.join("static"),
        &scratch.0.join("bindgen"),
        &scratch.out(),
    );
    assert!(result.is_err());
}

#[test]
fn comments_leave_the_served_page() {
    assert_eq!(
        without_comments("<!doctype html>\n<!--\n  contract\n-->\n<html><!-- x --><b>k</b></html>"),
        "<!doctype html>\n<html><b>k</b></html>"
    );
    assert_eq!(without_comments("a<!-- open"), "a<!-- open");
    assert_eq!(without_comments("plain"), "plain");
}
