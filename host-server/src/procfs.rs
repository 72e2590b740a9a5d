//! What the host learns about a session's processes from `/proc`: the
//! program's working directory and the command in its terminal's
//! foreground, which the session's record keeps so a restore can start the
//! new program in the same place and say what was not restarted.
//!
//! The parsers are pure functions over the text the kernel writes, so the
//! awkward cases (command names with spaces and parentheses, a truncated
//! file, a terminal whose foreground group is the shell itself or none)
//! are unit-tested on recorded text. The few functions that read files are
//! thin around them, and only the PTY seam's real process calls them.

use std::fs;

/// Facts about a running program that its session's record keeps. `None`
/// means unknown (the process is gone, or `/proc` said nothing useful),
/// never "cleared": a snapshot without a fact leaves the stored one alone.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProcessFacts {
    pub cwd: Option<String>,
    /// The foreground command line, when it is not the program itself.
    pub foreground: Option<String>,
}

impl ProcessFacts {
    /// Reads the facts of the program the host started as `started` (bwrap,
    /// or the program itself without a sandbox).
    pub fn read(started: u32) -> ProcessFacts {
        let Some(pid) = program_pid(started) else {
            return ProcessFacts::default();
        };
        ProcessFacts {
            cwd: cwd(pid),
            foreground: foreground_command(pid),
        }
    }
}

/// The session's own program below bwrap (the monitor the host started,
/// and, with a bwrap older than `--as-pid-1` or without it, the PID
/// namespace's init): what its working directory and foreground group are
/// read from. The program itself when it runs without bwrap.
pub fn program_pid(started: u32) -> Option<u32> {
    let mut pid = started;
    for _ in 0..2 {
        let comm = fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
        if !is_bwrap(&comm) {
            break;
        }
        let children = fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).ok()?;
        pid = first_child(&children)?;
    }
    Some(pid)
}

/// The working directory of `pid`.
fn cwd(pid: u32) -> Option<String> {
    fs::read_link(format!("/proc/{pid}/cwd"))
        .ok()
        .map(|path| path.to_string_lossy().into_owned())
}

/// The command line of the terminal's foreground process group, if it is
/// not `shell` itself.
fn foreground_command(shell: u32) -> Option<String> {
    let stat = fs::read_to_string(format!("/proc/{shell}/stat")).ok()?;
    let group = foreground_group(&stat, shell)?;
    let cmdline = fs::read(format!("/proc/{group}/cmdline")).ok()?;
    command_line(&cmdline)
}

/// Whether a `/proc/PID/comm` names bwrap (the kernel ends it with a
/// newline).
pub fn is_bwrap(comm: &str) -> bool {
    comm.trim_end() == "bwrap"
}

/// The first pid of a `/proc/PID/task/TID/children` list.
pub fn first_child(children: &str) -> Option<u32> {
    children.split_whitespace().next()?.parse().ok()
}

/// The foreground process group of `shell`'s terminal, from its
/// `/proc/PID/stat`, unless that group is the shell's own or there is none.
///
/// Field 8 (`tpgid`) names the group. The command name in field 2 may hold
/// spaces and parentheses, so the fields are counted from after the last
/// `)`: state, ppid, pgrp, session, tty_nr, then tpgid. The kernel writes
/// -1 for a process without a terminal.
pub fn foreground_group(stat: &str, shell: u32) -> Option<u32> {
    let after = &stat[stat.rfind(')')? + 1..];
    let tpgid: i64 = after.split_whitespace().nth(5)?.parse().ok()?;
    if tpgid <= 0 || tpgid == i64::from(shell) {
        return None;
    }
    u32::try_from(tpgid).ok()
}

/// A `/proc/PID/cmdline` (arguments separated and ended by NUL) as one
/// line a POSIX shell reads back as the same arguments (see
/// [`shell_word`]); `None` for an empty one (a zombie, or a kernel
/// thread). Trailing NULs (a program that rewrote its title) are not
/// arguments.
pub fn command_line(raw: &[u8]) -> Option<String> {
    let end = raw.iter().rposition(|b| *b != 0)? + 1;
    let words: Vec<String> = raw[..end]
        .split(|b| *b == 0)
        .map(|w| shell_word(&String::from_utf8_lossy(w)))
        .collect();
    Some(words.join(" "))
}

/// `word` as a shell reads it back: as it is when it holds only
/// characters no shell treats specially, else in single quotes (a quote
/// inside written `'\''`).
pub fn shell_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"@%+=:,./_-".contains(&b));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bash at a prompt, as `/proc/4242/stat` shows it (recorded, cut
    /// after the fields that matter): its own group is the foreground.
    const SHELL_AT_PROMPT: &str = "4242 (bash) S 4241 4242 4242 34816 4242 4194560 1 0 0 0";

    /// The same bash while `vim` (group 4300) runs in the foreground.
    const SHELL_RUNNING_VIM: &str = "4242 (bash) S 4241 4242 4242 34816 4300 4194304 9 0 0 0";

    #[test]
    fn the_foreground_group_is_field_eight() {
        assert_eq!(foreground_group(SHELL_RUNNING_VIM, 4242), Some(4300));
    }

    #[test]
    fn the_shell_itself_in_the_foreground_is_no_foreground_command() {
        assert_eq!(foreground_group(SHELL_AT_PROMPT, 4242), None);
    }

    #[test]
    fn no_terminal_or_a_zero_group_is_none() {
        let no_terminal = "17 (sshd) S 1 17 17 0 -1 4194560 5 0 0 0";
        assert_eq!(foreground_group(no_terminal, 17), None);
        let zero = "17 (x) S 1 17 17 0 0 4194560 5 0 0 0";
        assert_eq!(foreground_group(zero, 17), None);
    }

    #[test]
    fn command_names_with_spaces_and_parentheses_do_not_shift_the_fields() {
        // A program may name itself anything (prctl PR_SET_NAME, or the
        // file name it was run as): fields resume after the last ')'.
        let odd = "4242 (my (odd) sh) ) S 4241 4242 4242 34816 4300 4194304 9 0 0 0";
        assert_eq!(foreground_group(odd, 4242), Some(4300));
        let spaces = "4242 (a b c d e f) S 4241 4242 4242 34816 4300 0";
        assert_eq!(foreground_group(spaces, 4242), Some(4300));
    }

    #[test]
    fn a_truncated_or_garbled_stat_is_none_not_a_panic() {
        assert_eq!(foreground_group("", 1), None);
        assert_eq!(foreground_group("4242 (bash", 4242), None);
        assert_eq!(foreground_group("4242 (bash) S 4241 4242 4242", 4242), None);
        assert_eq!(
            foreground_group("4242 (bash) S 4241 4242 4242 34816 x 0", 4242),
            None
        );
        assert_eq!(
            foreground_group("4242 (bash) S 1 2 3 4 99999999999 0", 4242),
            None,
            "a group beyond any pid"
        );
    }

    #[test]
    fn command_lines_join_their_words() {
        assert_eq!(
            command_line(b"vim\0notes.txt\0").as_deref(),
            Some("vim notes.txt")
        );
        assert_eq!(
            command_line(b"less\0\0-R\0\0\0").as_deref(),
            Some("less '' -R"),
            "an empty argument is one; trailing NULs are not"
        );
        assert_eq!(
            command_line(b"grep\0a b\0it's\0$HOME\0").as_deref(),
            Some(r"grep 'a b' 'it'\''s' '$HOME'"),
            "a shell reads the same arguments back"
        );
        assert_eq!(
            command_line(b"python3\0caf\xc3\xa9\xff\0").as_deref(),
            Some("python3 'caf\u{e9}\u{fffd}'")
        );
        assert_eq!(command_line(b""), None, "a zombie has no command line");
        assert_eq!(command_line(b"\0\0"), None);
    }

    #[test]
    fn bwrap_and_its_first_child_are_recognised() {
        assert!(is_bwrap("bwrap\n"));
        assert!(!is_bwrap("bash\n"));
        assert!(!is_bwrap("bwrapper\n"));
        assert_eq!(first_child("4243 4250 \n"), Some(4243));
        assert_eq!(first_child(""), None);
        assert_eq!(first_child("x"), None);
    }

    #[test]
    fn the_facts_of_this_test_process_are_read() {
        // The one test that reads /proc: this process is no bwrap and has
        // no controlling terminal in the foreground of another group.
        let facts = ProcessFacts::read(std::process::id());
        let here = std::env::current_dir()
            .ok()
            .map(|dir| dir.to_string_lossy().into_owned());
        assert_eq!(facts.cwd, here);
        assert_eq!(ProcessFacts::read(u32::MAX), ProcessFacts::default());
    }
}
