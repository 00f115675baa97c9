//! A script's source as loaded: the libraries its first line names
//! (`-- include: prelude, order`, from `lua/lib/`) prepended to it, so each
//! shared piece of Lua is written once and every script still runs by SHA.

use fred::prelude::{Error, ErrorKind};

/// The libraries a script may include, by name.
const LIBS: &[(&str, &str)] = &[
    ("prelude", include_str!("../../lua/lib/prelude.lua")),
    ("order", include_str!("../../lua/lib/order.lua")),
    ("queue", include_str!("../../lua/lib/queue.lua")),
];

const INCLUDE: &str = "-- include:";

/// The libraries `script` names on its first line, in order (none without the line).
fn includes(script: &str) -> Vec<&str> {
    let first = script.lines().next().unwrap_or("");
    match first.strip_prefix(INCLUDE) {
        Some(names) => names.split(',').map(str::trim).filter(|n| !n.is_empty()).collect(),
        None => Vec::new(),
    }
}

/// `script` with its libraries before it. The libraries define locals only
/// (Redis refuses a script that sets a global), so a script sees them as its own.
pub(super) fn assemble(name: &str, script: &str) -> Result<String, Error> {
    let mut source = String::new();
    for lib in includes(script) {
        let (_, text) = LIBS
            .iter()
            .find(|(n, _)| *n == lib)
            .ok_or_else(|| Error::new(ErrorKind::Config, format!("{name}.lua includes an unknown library `{lib}`")))?;
        source.push_str(text);
    }
    source.push_str(script);
    Ok(source)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::{fs, path::Path};

    /// Every `lua/*.lua` script, by file name.
    fn scripts() -> Vec<(String, String)> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("lua");
        let mut out: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "lua"))
            .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), fs::read_to_string(&p).unwrap()))
            .collect();
        out.sort();
        assert!(out.len() > 10, "lua/ holds the scripts");
        out
    }

    /// What only `lua/lib/` may write; a script uses the library's function.
    const SHARED: &[(&str, &str)] = &[
        ("redis.call('TIME')", "prelude's now_ms()"),
        ("string.format('%d'", "prelude's int()"),
        ("> 0 and now >=", "prelude's has_ended() / closed_at()"),
        ("cjson.encode(order)", "order's next_version()"),
        ("order.version + 1", "order's next_version()"),
        ("'ZINCRBY'", "order's mark_paid()"),
        ("== 'paid' then", "order's not_payable()"),
    ];

    #[test]
    fn no_script_holds_a_copy_of_a_shared_piece() {
        for (file, text) in scripts() {
            let code: String =
                text.lines().filter(|l| !l.trim_start().starts_with("--")).collect::<Vec<_>>().join("\n");
            for (piece, instead) in SHARED {
                assert!(!code.contains(piece), "lua/{file} writes `{piece}` again: use {instead} (lua/lib/)");
            }
        }
    }

    #[test]
    fn every_library_a_script_names_exists_and_what_it_uses_is_included() {
        for (file, text) in scripts() {
            let name = file.trim_end_matches(".lua");
            let source = assemble(name, &text).unwrap();
            let named = includes(&text);
            for (lib, lib_text) in LIBS {
                // A library's functions, used by the script without the library: a nil call at run time.
                for function in lib_text.lines().filter_map(|l| l.strip_prefix("local function ")) {
                    let function = &function[..function.find('(').unwrap()];
                    let used = text.contains(&format!("{function}("));
                    assert!(!used || named.contains(lib), "lua/{file} calls {function}() but does not include `{lib}`");
                }
            }
            assert!(source.ends_with(&text));
        }
    }

    #[test]
    fn an_unknown_library_is_refused() {
        let error = assemble("x", "-- include: prelude, nope\nreturn 1").unwrap_err();
        assert!(error.details().contains("unknown library `nope`"), "{error:?}");
        assert_eq!(includes("-- x.lua: no include line\nreturn 1"), Vec::<&str>::new());
    }
}
