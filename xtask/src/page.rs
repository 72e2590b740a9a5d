//! The deployable page: what `cargo xtask build` writes into `static/dist`
//! from the sources in `static/` and wasm-bindgen's output.
//!
//! Every asset the terminal page loads gets a content-hashed name under
//! `assets/` (`loader.<hash>.js`, `style.<hash>.css`,
//! `web_terminal.<hash>.js`, `web_terminal_bg.<hash>.wasm`), and every
//! reference to it is rewritten, so the directory can tell browsers to keep
//! them forever (`immutable`) and a new build is a new set of names: a page
//! never mixes a new loader with an old client. Names are hashed after their
//! own references were rewritten (the wasm first, then the glue that names
//! it, then the loader that imports the glue), so a change anywhere changes
//! every name above it. `index.html` keeps its name (the page's address is
//! `/`) and is revalidated by ETag instead.
//!
//! Each compressible file also gets precompressed siblings, `.br` (brotli at
//! quality 11) and `.gz` (gzip at level 9), which the directory sends to
//! browsers that ask for them: compressing once at build time affords the
//! slowest, smallest settings, which no server could run per request.
//!
//! The output folder is removed and written anew on every build, so names of
//! earlier builds never accumulate.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use sha2::{Digest as _, Sha256};

/// The folder under the output that holds the hashed assets; the directory
/// serves everything in it as immutable.
pub const ASSETS: &str = "assets";

/// wasm-bindgen's output names (`--out-name`): the terminal's client and
/// the recording player's.
pub const TERMINAL: &str = "web_terminal";
pub const PLAYER: &str = "player";
/// Where the glue imports the wasm from: wasm-bindgen 0.2.130 (`--target
/// web`) writes `new URL('<out-name>_bg.wasm', import.meta.url)`.
fn glue_wasm_reference(name: &str) -> String {
    format!("'{name}_bg.wasm'")
}
/// What installing the page as an app needs, copied as they are.
const APP_FILES: [&str; 2] = ["manifest.webmanifest", "icon.svg"];

/// The loader's import of the glue (`static/loader.js`).
const LOADER_GLUE_REFERENCE: &str = "'./web_terminal.js'";
/// The loader's imports, on first use, of the files module, the settings
/// panel and a share link's redemption.
const LOADER_FILES_REFERENCE: &str = "'./files.js'";
const LOADER_SETTINGS_REFERENCE: &str = "'./settings.js'";
const LOADER_SHARE_REFERENCE: &str = "'./share.js'";
/// The page's references (`static/index.html`).
const PAGE_STYLE_REFERENCE: &str = "href=\"style.css\"";
const PAGE_LOADER_REFERENCE: &str = "src=\"loader.js\"";
/// The player page's references (`static/play.html`, `static/play.js`).
const PLAY_SCRIPT_REFERENCE: &str = "src=\"play.js\"";
const PLAY_STYLE_REFERENCE: &str = "href=\"play.css\"";
const PLAY_GLUE_REFERENCE: &str = "'./player.js'";

/// What one build wrote, for the size report.
#[derive(Debug)]
pub struct BuiltFile {
    /// The path under the output folder, with `/` separators.
    pub name: String,
    pub bytes: u64,
    pub brotli: Option<u64>,
    pub gzip: Option<u64>,
}

/// Writes the page into `out` (removed first) from the sources in `source`
/// (`index.html`, `loader.js`, `style.css`) and wasm-bindgen's output in
/// `bindgen` (`web_terminal.js`, `web_terminal_bg.wasm`).
pub fn assemble(source: &Path, bindgen: &Path, out: &Path) -> Result<Vec<BuiltFile>> {
    if out.exists() {
        std::fs::remove_dir_all(out).with_context(|| format!("clearing {}", out.display()))?;
    }
    let assets = out.join(ASSETS);
    std::fs::create_dir_all(&assets).with_context(|| format!("creating {}", assets.display()))?;

    let (wasm_name, glue_name) = client(bindgen, &assets, TERMINAL)?;
    let (player_wasm_name, player_glue_name) = client(bindgen, &assets, PLAYER)?;

    // Loaded on demand, so not part of a first visit's bytes.
    let files = read_text(&source.join("files.js"))?;
    let files_name = write_hashed(&assets, "files", "js", files.as_bytes())?;
    let settings = read_text(&source.join("settings.js"))?;
    let settings_name = write_hashed(&assets, "settings", "js", settings.as_bytes())?;
    let share = read_text(&source.join("share.js"))?;
    let share_name = write_hashed(&assets, "share", "js", share.as_bytes())?;

    let loader = read_text(&source.join("loader.js"))?;
    let loader = replace_once(&loader, LOADER_GLUE_REFERENCE, &format!("'./{glue_name}'"))
        .context("static/loader.js")?;
    let loader = replace_once(
        &loader,
        LOADER_FILES_REFERENCE,
        &format!("'./{files_name}'"),
    )
    .context("static/loader.js")?;
    let loader = replace_once(
        &loader,
        LOADER_SETTINGS_REFERENCE,
        &format!("'./{settings_name}'"),
    )
    .context("static/loader.js")?;
    let loader = replace_once(
        &loader,
        LOADER_SHARE_REFERENCE,
        &format!("'./{share_name}'"),
    )
    .context("static/loader.js")?;
    // Its comments are for people reading the source, as the page's are.
    let loader = without_line_comments(&loader);
    let loader_name = write_hashed(&assets, "loader", "js", loader.as_bytes())?;

    let style = read_text(&source.join("style.css"))?;
    ensure!(
        !style.replace("url(data:", "").contains("url("),
        "static/style.css refers to another file; give it a hashed name in xtask/src/page.rs first"
    );
    let style_name = write_hashed(&assets, "style", "css", style.as_bytes())?;
    // The sign-in and sessions pages, rendered by the directory, link the
    // stylesheet by its plain name.
    write(&out.join("style.css"), style.as_bytes())?;

    let index = read_text(&source.join("index.html"))?;
    let index = replace_once(
        &index,
        PAGE_STYLE_REFERENCE,
        &format!("href=\"{ASSETS}/{style_name}\""),
    )
    .context("static/index.html")?;
    let index = replace_once(
        &index,
        PAGE_LOADER_REFERENCE,
        &format!("src=\"{ASSETS}/{loader_name}\""),
    )
    .context("static/index.html")?;
    // The page contract in its comment is for people reading the source;
    // every first visit would download it.
    let index = without_comments(&index);
    write(&out.join("index.html"), index.as_bytes())?;

    // The recording player: its own page, script and wasm, none of which
    // the terminal's first visit loads.
    let play_script = read_text(&source.join("play.js"))?;
    let play_script = replace_once(
        &play_script,
        PLAY_GLUE_REFERENCE,
        &format!("'./{player_glue_name}'"),
    )
    .context("static/play.js")?;
    let play_script = without_line_comments(&play_script);
    let play_script_name = write_hashed(&assets, "play", "js", play_script.as_bytes())?;
    let play_style = read_text(&source.join("play.css"))?;
    let play_style_name = write_hashed(&assets, "play", "css", play_style.as_bytes())?;
    let play = read_text(&source.join("play.html"))?;
    let play = replace_once(
        &play,
        PAGE_STYLE_REFERENCE,
        &format!("href=\"{ASSETS}/{style_name}\""),
    )
    .context("static/play.html")?;
    let play = replace_once(
        &play,
        PLAY_SCRIPT_REFERENCE,
        &format!("src=\"{ASSETS}/{play_script_name}\""),
    )
    .context("static/play.html")?;
    let play = replace_once(
        &play,
        PLAY_STYLE_REFERENCE,
        &format!("href=\"{ASSETS}/{play_style_name}\""),
    )
    .context("static/play.html")?;
    write(&out.join("play.html"), without_comments(&play).as_bytes())?;

    // The web app manifest and its icon keep plain names: an installed
    // app finds them again by those, and they are tiny and `no-cache`.
    for name in APP_FILES {
        write(&out.join(name), &read(&source.join(name))?)?;
    }

    let mut built = Vec::new();
    for name in [
        "index.html".to_owned(),
        "style.css".to_owned(),
        APP_FILES[0].to_owned(),
        APP_FILES[1].to_owned(),
        format!("{ASSETS}/{loader_name}"),
        format!("{ASSETS}/{style_name}"),
        format!("{ASSETS}/{glue_name}"),
        format!("{ASSETS}/{wasm_name}"),
        format!("{ASSETS}/{files_name}"),
        format!("{ASSETS}/{settings_name}"),
        format!("{ASSETS}/{share_name}"),
        "play.html".to_owned(),
        format!("{ASSETS}/{play_script_name}"),
        format!("{ASSETS}/{play_style_name}"),
        format!("{ASSETS}/{player_glue_name}"),
        format!("{ASSETS}/{player_wasm_name}"),
    ] {
        built.push(precompress(out, &name)?);
    }
    Ok(built)
}

/// Writes wasm-bindgen's output `name` (`<name>_bg.wasm` and its glue
/// `<name>.js`) under hashed names, the glue pointing at the wasm's; says
/// both names.
fn client(bindgen: &Path, assets: &Path, name: &str) -> Result<(String, String)> {
    let wasm = read(&bindgen.join(format!("{name}_bg.wasm")))?;
    let wasm_name = write_hashed(assets, &format!("{name}_bg"), "wasm", &wasm)?;
    let glue = read_text(&bindgen.join(format!("{name}.js")))?;
    let glue = replace_once(&glue, &glue_wasm_reference(name), &format!("'{wasm_name}'"))
        .context("wasm-bindgen's glue (a new wasm-bindgen version?)")?;
    let glue_name = write_hashed(assets, name, "js", glue.as_bytes())?;
    Ok((wasm_name, glue_name))
}

/// `js` without its whole-line `//` comments (the loader's: it has no
/// string or template literal that spans lines).
fn without_line_comments(js: &str) -> String {
    js.lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .map(|line| format!("{line}\n"))
        .collect()
}

/// `html` without its `<!-- … -->` comments (and the line breaks they
/// leave); an unclosed comment is kept, as the browser would show it.
fn without_comments(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(start) = rest.find("<!--") {
        let Some(end) = rest[start..].find("-->") else {
            break;
        };
        out.push_str(&rest[..start]);
        rest = rest[start + end + 3..].trim_start_matches('\n');
    }
    out.push_str(rest);
    out
}

/// `stem.<16 hex digits of the SHA-256 of bytes>.ext`, written into `dir`.
fn write_hashed(dir: &Path, stem: &str, ext: &str, bytes: &[u8]) -> Result<String> {
    let name = hashed_name(stem, ext, bytes);
    write(&dir.join(&name), bytes)?;
    Ok(name)
}

fn hashed_name(stem: &str, ext: &str, bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let hex: String = digest[..8]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    format!("{stem}.{hex}.{ext}")
}

/// `text` with its one `from` replaced; a reference that is missing or
/// appears twice means the sources changed shape, and a page that loads
/// an unhashed (or wrong) name would go stale in browsers, so it fails.
fn replace_once(text: &str, from: &str, to: &str) -> Result<String> {
    let count = text.matches(from).count();
    if count != 1 {
        bail!("expected {from} exactly once, found it {count} times");
    }
    Ok(text.replacen(from, to, 1))
}

/// Writes `name.br` and `name.gz` next to `name` when they are smaller.
fn precompress(out: &Path, name: &str) -> Result<BuiltFile> {
    let path = out.join(name);
    let bytes = read(&path)?;
    let brotli = brotli_best(&bytes)?;
    let gzip = gzip_best(&bytes)?;
    let keep = |compressed: Vec<u8>, ext: &str| -> Result<Option<u64>> {
        if compressed.len() >= bytes.len() {
            return Ok(None);
        }
        write(&sibling(&path, ext), &compressed)?;
        Ok(Some(compressed.len() as u64))
    };
    Ok(BuiltFile {
        name: name.to_owned(),
        bytes: bytes.len() as u64,
        brotli: keep(brotli, "br")?,
        gzip: keep(gzip, "gz")?,
    })
}

fn sibling(path: &Path, ext: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".");
    name.push(ext);
    PathBuf::from(name)
}

/// Brotli at its maximum quality (11) with a 4 MiB window (22, the
/// reference encoder's default; every browser decodes up to 24).
fn brotli_best(bytes: &[u8]) -> Result<Vec<u8>> {
    let params = brotli::enc::BrotliEncoderParams {
        quality: 11,
        lgwin: 22,
        ..Default::default()
    };
    let mut compressed = Vec::new();
    brotli::BrotliCompress(&mut &bytes[..], &mut compressed, &params).context("brotli")?;
    Ok(compressed)
}

fn gzip_best(bytes: &[u8]) -> Result<Vec<u8>> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(bytes).context("gzip")?;
    encoder.finish().context("gzip")
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests;
