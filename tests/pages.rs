//! Black-box tests of the HTML pages in a real browser: the report, the receipt and the run
//! dashboard are rendered from fixtures of the demo county (`tests/pages/*.json`), written to a
//! temporary file and opened with headless Chromium (Debian's `/usr/bin/chromium`).
//!
//! Checked per page: the screenshot (A4 at 150 dpi, 1240×1754) is a PNG of that size; the
//! browser logged no console message (the pages have no script, so any message is a CSP
//! violation or an error); the page made no network request (read from Chromium's NetLog:
//! requests made on behalf of the `file://` page, as opposed to Chromium's own background
//! traffic); the DOM Chromium built holds the expected content and no full ID number.
//! A control page that does fetch proves the network and console checks see what they claim.
//!
//! Without `/usr/bin/chromium` the tests print why and pass, unless `HEDUI_REQUIRE_CHROMIUM=1`
//! (CI), where they fail; CI also needs a Chinese font (`fonts-noto-cjk`), checked with fc-list. `HEDUI_SAVE_SCREENSHOTS=DIR` keeps the screenshots (this is how
//! `tests/pages/report.png` and `summary.png` were made).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hedui::render::{Texts, receipt_html, report_html, summary_html};
use hedui::report::{SourceStatus, VerificationReport};

const CHROMIUM: &str = "/usr/bin/chromium";
const WIDTH: u32 = 1240;
const HEIGHT: u32 = 1754;

/// Chromium, or `None` after printing why the test is skipped.
fn chromium() -> Option<PathBuf> {
    let path = PathBuf::from(CHROMIUM);
    let required = std::env::var("HEDUI_REQUIRE_CHROMIUM").is_ok_and(|v| v == "1");
    if path.is_file() {
        // Chromium does not depend on a CJK font; without one the pages load fine but every
        // Chinese glyph is drawn as a box, so the screenshots would be useless.
        let cjk = Command::new("fc-list")
            .arg(":lang=zh")
            .arg("family")
            .output();
        match cjk {
            Ok(out) if out.status.success() && out.stdout.iter().all(u8::is_ascii_whitespace) => {
                let msg = "no Chinese font is installed (apt-get install -y fonts-noto-cjk): screenshots show boxes";
                assert!(!required, "{msg}");
                eprintln!("warning: {msg}");
            }
            _ => {}
        }
        return Some(path);
    }
    if required {
        panic!(
            "{CHROMIUM} is missing and HEDUI_REQUIRE_CHROMIUM=1: install it with `apt-get install -y chromium fonts-noto-cjk`"
        );
    }
    eprintln!(
        "skipped: {CHROMIUM} is not installed (apt-get install -y chromium fonts-noto-cjk; set HEDUI_REQUIRE_CHROMIUM=1 to make this a failure)"
    );
    None
}

fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/pages")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}

/// The demo report, with one source made unverified so that state is on the page too.
fn report() -> VerificationReport {
    let mut r: VerificationReport =
        serde_json::from_str(&fixture("report.json")).expect("the report fixture parses");
    let s = r
        .sources
        .iter_mut()
        .find(|s| s.source == "securities")
        .expect("securities section");
    s.status = SourceStatus::Unverified;
    s.reason = Some("source_missing: no securities.csv or securities.parquet".into());
    r
}

/// What one visit of a page in Chromium produced.
struct Visit {
    /// Chromium's log lines (stderr) of both runs.
    log: String,
    /// The DOM after load (`--dump-dom`).
    dom: String,
    /// The screenshot (`--screenshot`).
    png: Vec<u8>,
    /// URLs the page asked the network for.
    page_requests: Vec<String>,
}

/// Run Chromium with the shared flags and these; fail after two minutes.
fn run_chromium(
    exe: &Path,
    dir: &Path,
    tag: &str,
    extra: &[String],
    url: &str,
) -> (String, String, PathBuf) {
    let profile = dir.join(format!("profile-{tag}"));
    let netlog = dir.join(format!("netlog-{tag}.json"));
    let mut cmd = Command::new(exe);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        "--enable-logging=stderr",
        "--v=0",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .arg(format!("--log-net-log={}", netlog.display()))
    .args(extra)
    .arg(url)
    .stdin(Stdio::null());
    let out_path = dir.join(format!("stdout-{tag}"));
    let err_path = dir.join(format!("stderr-{tag}"));
    cmd.stdout(std::fs::File::create(&out_path).expect("stdout file"))
        .stderr(std::fs::File::create(&err_path).expect("stderr file"));
    let mut child = cmd.spawn().expect("chromium starts");
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for chromium") {
            break status;
        }
        if start.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium ({tag}) did not finish in 120 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let stdout = std::fs::read_to_string(&out_path).unwrap_or_default();
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    assert!(
        status.success(),
        "chromium ({tag}) failed: {status}\n{stderr}"
    );
    (stdout, stderr, netlog)
}

/// URLs requested on behalf of a `file://` page, from a NetLog file.
fn page_requests(netlog: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(netlog)
        .unwrap_or_else(|e| panic!("netlog {}: {e}", netlog.display()));
    let log: serde_json::Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("netlog {} is not JSON: {e}", netlog.display()));
    let events = log
        .get("events")
        .and_then(|e| e.as_array())
        .expect("netlog events");
    let mut urls: Vec<String> = events
        .iter()
        .filter_map(|e| e.get("params"))
        .filter(|p| {
            p.get("network_isolation_key")
                .and_then(|k| k.as_str())
                .is_some_and(|k| k.starts_with("file://"))
        })
        .filter_map(|p| p.get("url").and_then(|u| u.as_str()).map(str::to_string))
        .collect();
    urls.sort();
    urls.dedup();
    urls
}

fn visit(exe: &Path, html: &str, name: &str) -> Visit {
    let dir = tempfile::Builder::new()
        .prefix("hedui-pages-")
        .tempdir()
        .expect("temp dir");
    let page = dir.path().join(format!("{name}.html"));
    std::fs::write(&page, html).expect("write the page");
    let url = format!("file://{}", page.display());
    let shot = dir.path().join(format!("{name}.png"));
    let (_, log1, net1) = run_chromium(
        exe,
        dir.path(),
        "shot",
        &[
            format!("--screenshot={}", shot.display()),
            format!("--window-size={WIDTH},{HEIGHT}"),
        ],
        &url,
    );
    let (dom, log2, net2) = run_chromium(exe, dir.path(), "dom", &["--dump-dom".to_string()], &url);
    let png =
        std::fs::read(&shot).unwrap_or_else(|e| panic!("no screenshot {}: {e}", shot.display()));
    if let Ok(keep) = std::env::var("HEDUI_SAVE_SCREENSHOTS") {
        std::fs::create_dir_all(&keep).expect("screenshot directory");
        std::fs::write(Path::new(&keep).join(format!("{name}.png")), &png)
            .expect("save the screenshot");
    }
    let mut requests = page_requests(&net1);
    requests.extend(page_requests(&net2));
    requests.sort();
    requests.dedup();
    Visit {
        log: format!("{log1}\n{log2}"),
        dom,
        png,
        page_requests: requests,
    }
}

/// The lines in which Chromium reported a console message or an uncaught error.
fn console_lines(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| l.contains(":CONSOLE") || l.contains("Uncaught"))
        .collect()
}

/// Width and height of a PNG, after checking its signature and header chunk.
fn png_size(png: &[u8]) -> (u32, u32) {
    assert!(png.len() > 1000, "the screenshot is {} bytes", png.len());
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    assert_eq!(&png[12..16], b"IHDR", "no PNG header chunk");
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    (be(&png[16..20]), be(&png[20..24]))
}

/// `[0-9]{17}[0-9X]` anywhere.
fn full_id(text: &str) -> Option<&str> {
    let b = text.as_bytes();
    (0..b.len().saturating_sub(17)).find_map(|i| {
        let ok = b[i..i + 17].iter().all(u8::is_ascii_digit)
            && (b[i + 17].is_ascii_digit() || b[i + 17] == b'X');
        ok.then(|| &text[i..i + 18])
    })
}

fn assert_clean(v: &Visit, name: &str) {
    assert_eq!(png_size(&v.png), (WIDTH, HEIGHT), "{name}: screenshot size");
    assert_eq!(
        console_lines(&v.log),
        Vec::<&str>::new(),
        "{name}: console messages"
    );
    assert_eq!(
        v.page_requests,
        Vec::<String>::new(),
        "{name}: network requests"
    );
    assert!(v.dom.contains("</html>"), "{name}: no DOM dumped");
    if let Some(id) = full_id(&v.dom) {
        panic!("{name}: a full ID number in the DOM: {id}");
    }
}

#[test]
fn the_report_page_loads_in_chromium_without_console_messages_or_network_requests() {
    let Some(exe) = chromium() else { return };
    let r = report();
    let v = visit(&exe, &report_html(&r, &Texts::zh()), "report");
    assert_clean(&v, "report");
    for zh in [
        "户籍",
        "纳税记录",
        "社会保险",
        "不动产登记",
        "市场主体登记",
        "住房公积金",
        "车船登记",
        "银行存款",
        "商业保险",
        "证券",
        "互联网金融资产",
        "医保结算",
    ] {
        assert!(v.dom.contains(zh), "source {zh} is not on the page");
    }
    for p in &r.persons {
        assert!(
            v.dom.contains(&p.id_number_masked),
            "{} is not on the page",
            p.id_number_masked
        );
    }
    for f in &r.findings {
        assert!(
            v.dom.contains(&format!("<code>{}</code>", f.rule)),
            "finding {} is not on the page",
            f.rule
        );
    }
    assert!(v.dom.contains("居民家庭经济状况核对报告") && v.dom.contains(&r.household_id));
    assert!(
        v.dom.contains("未核实") && v.dom.contains("数据源文件缺失"),
        "the unverified source and its reason"
    );
    assert!(
        v.dom.contains("<svg") && v.dom.contains("低保标准"),
        "the chart"
    );
}

#[test]
fn the_receipt_and_the_run_summary_load_in_chromium_cleanly() {
    let Some(exe) = chromium() else { return };
    let r = report();
    let v = visit(&exe, &receipt_html(&r, &Texts::zh()), "receipt");
    assert_clean(&v, "receipt");
    assert!(v.dom.contains("数据查询回执") && v.dom.contains("复核申请"));

    let summary: serde_json::Value =
        serde_json::from_str(&fixture("summary.json")).expect("the summary fixture parses");
    let by_region: Vec<(String, BTreeMap<String, u64>)> =
        serde_json::from_str(&fixture("by_region.json")).expect("the regions fixture parses");
    let v = visit(
        &exe,
        &summary_html(&summary, &by_region, &Texts::zh()),
        "summary",
    );
    assert_clean(&v, "summary");
    let households = summary["households"]
        .as_u64()
        .expect("households")
        .to_string();
    assert!(v.dom.contains("核对批次汇总") && v.dom.contains(&households));
    for (region, _) in &by_region {
        assert!(
            v.dom.contains(region.as_str()),
            "region {region} is not on the page"
        );
    }
}

#[test]
fn the_network_and_console_checks_catch_a_page_that_fetches() {
    let Some(exe) = chromium() else { return };
    // Port 9 (discard) on loopback: nothing leaves the machine, the request is still made.
    let fetching = "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>t</title></head><body><img src=\"http://127.0.0.1:9/x.png\"></body></html>";
    let v = visit(&exe, fetching, "control-fetch");
    assert_eq!(
        v.page_requests,
        vec!["http://127.0.0.1:9/x.png".to_string()],
        "the NetLog check sees the page's request"
    );
    // The pages' CSP blocks such a fetch, and the console check sees the violation.
    let blocked = fetching.replace(
        "<title>",
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'\"><title>",
    );
    let v = visit(&exe, &blocked, "control-csp");
    assert!(
        v.page_requests.is_empty(),
        "the CSP stopped the fetch: {:?}",
        v.page_requests
    );
    assert!(
        !console_lines(&v.log).is_empty(),
        "the console check sees the CSP violation"
    );
}
