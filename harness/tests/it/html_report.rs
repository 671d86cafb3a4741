//! The HTML report in a real browser: Debian's headless Chromium loads the page of a run and
//! of a matrix without a console message, runs its script (the cell a link points at opens),
//! and draws the timeline (a screenshot shows the expected window and the will's dot in their
//! colours).
//!
//! Needs `chromium` (Debian: `apt-get install chromium`). Without it the test says so loudly
//! and passes, unless `LASTWILL_REQUIRE_PEERS=1` (as `.ci/run` sets).

use crate::support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::lastwill;

/// Runs headless Chromium on `page` (a file, with `fragment` after `#`) with `args`.
fn chromium(page: &Path, fragment: &str, args: &[&str]) -> Output {
    let profile = page.with_extension("profile");
    Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--hide-scrollbars",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(format!("file://{}#{fragment}", page.display()))
        .output()
        .expect("run chromium")
}

fn temp_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("lastwill-{test}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Loads `page` and returns its DOM once the page's script ran, after checking that the
/// browser logged nothing from the page's console (script errors are logged there).
fn load(page: &Path, fragment: &str) -> String {
    let output = chromium(page, fragment, &["--dump-dom"]);
    assert!(output.status.success(), "{output:?}");
    let log = String::from_utf8_lossy(&output.stderr);
    let console: Vec<&str> = log.lines().filter(|l| l.contains("CONSOLE")).collect();
    assert!(
        console.is_empty(),
        "the page logged:\n{}",
        console.join("\n")
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn the_report_loads_in_chromium_and_draws_the_timeline() {
    let test = "the_report_loads_in_chromium_and_draws_the_timeline";
    if !support::peers_available(test, &["chromium"], "apt-get install chromium") {
        return;
    }
    let dir = temp_dir("html");
    let page = dir.join("run.html");
    // one scenario, so that its timeline is on the first screen: a will delayed by 5 s
    let output = lastwill(&[
        "run",
        "scenarios/will-delay/published-when-delay-elapses.yaml",
        "--format",
        "html",
        "--output",
        page.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{output:?}");
    let html = std::fs::read_to_string(&page).unwrap();
    for outside in ["http://", "https://", "<link", "src="] {
        assert!(
            !html.contains(outside),
            "the page refers outside itself: {outside}"
        );
    }

    let dom = load(&page, "s0c0");
    assert!(dom.contains("<svg class=\"timeline\""), "no timeline");
    // the script ran: the transcript the link points at is open
    assert!(dom.contains("<details id=\"s0c0\" open=\"\">"), "{dom}");
    assert!(dom.contains("watcher ← PUBLISH"), "no transcript");

    let shot = dir.join("run.png");
    let output = chromium(
        &page,
        "",
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1000,700",
        ],
    );
    assert!(output.status.success(), "{output:?}");
    let image = Screenshot::read(&shot);
    // the timeline's lane (#fafbfc), and inside it the widened window (#b7ebc6) and the
    // will that arrived in it (#1a7f37); the legend above uses the same colours
    let lane = image
        .first_row_with([0xfa, 0xfb, 0xfc])
        .expect("no timeline lane in the screenshot");
    let band = image.count_from(lane, [0xb7, 0xeb, 0xc6]);
    let dot = image.count_from(lane, [0x1a, 0x7f, 0x37]);
    assert!(
        band > 200,
        "the expected window is not drawn ({band} pixels)"
    );
    assert!(dot > 20, "the will's arrival is not drawn ({dot} pixels)");

    // a matrix page: two columns, each cell opening its own transcript
    let page = dir.join("matrix.html");
    let output = lastwill(&[
        "matrix",
        "--target",
        "one=ref",
        "--target",
        "two=ref",
        "--name",
        "will-delay/*",
        "--format",
        "html",
        "--output",
        page.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{output:?}");
    let dom = load(&page, "s2c1");
    assert!(dom.contains("<details id=\"s2c1\" open=\"\">"), "{dom}");
    assert!(dom.contains("two: watcher"), "no lane of the second target");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A screenshot's pixels, as RGB rows.
struct Screenshot {
    width: usize,
    rgb: Vec<[u8; 3]>,
}

impl Screenshot {
    fn read(path: &Path) -> Screenshot {
        let file = std::fs::File::open(path).expect("a screenshot");
        let mut reader = png::Decoder::new(std::io::BufReader::new(file))
            .read_info()
            .unwrap();
        let mut buffer = vec![0; reader.output_buffer_size().unwrap()];
        let frame = reader.next_frame(&mut buffer).unwrap();
        let channels = frame.color_type.samples();
        let rgb = buffer[..frame.buffer_size()]
            .chunks(channels)
            .map(|px| [px[0], px[1], px[2]])
            .collect();
        Screenshot {
            width: frame.width as usize,
            rgb,
        }
    }

    fn first_row_with(&self, colour: [u8; 3]) -> Option<usize> {
        self.rgb
            .iter()
            .position(|px| *px == colour)
            .map(|i| i / self.width)
    }

    /// Pixels of `colour` in row `row` and below.
    fn count_from(&self, row: usize, colour: [u8; 3]) -> usize {
        self.rgb[row * self.width..]
            .iter()
            .filter(|px| **px == colour)
            .count()
    }
}
