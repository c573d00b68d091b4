//! Executable scripts written by a test, for a server (or a stand-in for one) to run.
//!
//! Why a helper for something as small as writing a file: a test binary runs its tests on
//! several threads, and any of them may fork a child (a server under test spawning a CGI
//! script, a test starting a process) while another thread holds a freshly written script open
//! for writing. The child inherits that descriptor until its own `exec`, and for that instant
//! the kernel refuses to run the script: `ETXTBSY`, "Text file busy" (CI failed on exactly this).
//! So the file is written by a short-lived `sh` child instead: this process never holds a
//! writable descriptor of it, and by the time `install` returns the writer has exited.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// Writes `body` to `path` as an executable file (mode 0755), without this process ever
/// opening it for writing. Panics with the reason if it cannot: it is for tests.
pub fn install(path: &Path, body: &str) {
    let mut writer = Command::new("/bin/sh")
        .args(["-c", "cat > \"$1\" && chmod 755 \"$1\"", "install"])
        .arg(path)
        .stdin(Stdio::piped())
        .spawn()
        .expect("cannot start /bin/sh to write a script");
    writer.stdin.take().expect("piped").write_all(body.as_bytes()).expect("cannot write a script");
    let status = writer.wait().expect("cannot wait for the script's writer");
    assert!(status.success(), "writing {} failed: {status}", path.display());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_is_written_executable_and_runs() {
        let dir = std::env::temp_dir().join(format!("flash-testkit-script-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("hello.sh");
        install(&path, "#!/bin/sh\necho \"hi $1\"\n");
        let out = Command::new(&path).arg("there").output().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "hi there\n");
    }
}
