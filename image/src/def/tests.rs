//! Each rule of the parser, and a whole file, against what Apptainer does.

use super::*;

fn no_args() -> BTreeMap<String, String> {
    BTreeMap::new()
}

fn args(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
    kv.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn ok(text: &str) -> Definition {
    parse(text, &no_args()).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

fn one(text: &str) -> Stage {
    let mut d = ok(text);
    assert_eq!(d.stages.len(), 1, "{d:#?}");
    d.stages.remove(0)
}

/// The error for `text`, checked to name `line` and to contain `words`.
fn err_with(text: &str, a: &BTreeMap<String, String>, line: usize, words: &[&str]) -> DefError {
    let e = match parse(text, a) {
        Ok(d) => panic!("parsed, expected an error at line {line}: {d:#?}"),
        Err(e) => e,
    };
    assert_eq!(e.line, line, "{e}");
    for w in words {
        assert!(e.why.contains(w), "{e:?} does not name {w:?}");
    }
    let first = e.why.chars().next().unwrap();
    assert!(!first.is_uppercase(), "not lower case: {e}");
    assert!(!e.why.ends_with('.'), "final period: {e}");
    e
}

fn err(text: &str, line: usize, words: &[&str]) -> DefError {
    err_with(text, &no_args(), line, words)
}

// The header.

#[test]
fn a_bootstrap_line_alone_is_a_stage() {
    let s = one("Bootstrap: scratch\n");
    assert_eq!(s.header, Header::default());
    assert_eq!(s.sections, Sections::default());
    assert_eq!(s.name, None);
}

#[test]
fn header_keys_are_case_insensitive_and_values_trimmed() {
    let s = one(
        "BOOTSTRAP: debootstrap\nosversion:   bookworm  \nMirrorUrl:http://deb.debian.org/debian\n\
         INCLUDE: a, b c,d\tfoo,,  \nSTAGE: base\n",
    );
    assert_eq!(s.header.bootstrap, Agent::Debootstrap);
    assert_eq!(s.header.os_version.as_deref(), Some("bookworm"));
    assert_eq!(s.header.mirror_url.as_deref(), Some("http://deb.debian.org/debian"));
    assert_eq!(s.header.include, ["a", "b", "c", "d", "foo"]);
    assert_eq!(s.name.as_deref(), Some("base"));
}

#[test]
fn agents_are_taken_in_any_case_and_others_kept_in_lower_case() {
    for (name, agent) in [
        ("scratch", Agent::Scratch),
        ("Busybox", Agent::Busybox),
        ("LOCALIMAGE\nFrom: a.sif", Agent::LocalImage),
        ("docker\nFrom: alpine", Agent::Other("docker".into())),
        ("Docker-Daemon\nFrom: a:1", Agent::Other("docker-daemon".into())),
        ("oci-archive\nFrom: a.tar", Agent::Other("oci-archive".into())),
        ("library\nFrom: a/b/c", Agent::Other("library".into())),
        ("oras\nFrom: r/a:1", Agent::Other("oras".into())),
        ("shub\nFrom: a/b", Agent::Other("shub".into())),
        ("yum", Agent::Other("yum".into())),
        ("zypper", Agent::Other("zypper".into())),
        ("arch", Agent::Other("arch".into())),
    ] {
        let s = one(&format!("Bootstrap: {name}\n"));
        assert_eq!(s.header.bootstrap, agent, "{name}");
    }
}

#[test]
fn an_agent_apptainer_does_not_know_is_an_error_naming_it() {
    err("# c\nBootstrap: debootstrapp\n", 2, &["\"debootstrapp\"", "agent"]);
    err("Bootstrap:\n", 1, &["no agent"]);
    err("Bootstrap: buildah\nFrom: x\n", 1, &["\"buildah\""]);
}

#[test]
fn whole_line_comments_and_blank_lines_are_skipped() {
    let s = one(
        "# a comment\n\n  # indented comment\nBootstrap: docker\n\n# From: nope\nFrom: alpine\n",
    );
    assert_eq!(s.header.from.as_deref(), Some("alpine"));
}

#[test]
fn a_hash_inside_a_value_ends_it_as_in_apptainer() {
    // Apptainer's doHeader() keeps only strings.Split(line, "#")[0].
    let s = one("Bootstrap: debootstrap # the agent\nOSVersion: bookworm#12\n\
         MirrorURL: http://deb.debian.org/debian#frag\n");
    assert_eq!(s.header.bootstrap, Agent::Debootstrap);
    assert_eq!(s.header.os_version.as_deref(), Some("bookworm"));
    assert_eq!(s.header.mirror_url.as_deref(), Some("http://deb.debian.org/debian"));
}

#[test]
fn a_backslash_continues_a_value_on_the_next_line() {
    let s = one("Bootstrap: debootstrap\nOSVersion: book\\\n  worm\nMirrorURL: http://m/\n\
         Include: a \\\n   b, \\\n  c\nSetOpt: x\\n\\\ny\n");
    // Joined without a space, each piece trimmed.
    assert_eq!(s.header.os_version.as_deref(), Some("bookworm"));
    assert_eq!(s.header.include, ["a", "b", "c"]);
    // `\n` before the backslash is a newline.
    assert_eq!(s.header.other, [("setopt".to_string(), "x\ny".to_string(), 8)]);
}

#[test]
fn a_continuation_ended_by_a_blank_line_or_the_header_keeps_its_value() {
    let s = one("Bootstrap: docker\nFrom: alpine \\\n\n%post\necho\n");
    assert_eq!(s.header.from.as_deref(), Some("alpine"));
    let s = one("Bootstrap: docker\nFrom: alpine:\\\n3\nRegistry: r \\\n%post\necho\n");
    assert_eq!(s.header.from.as_deref(), Some("alpine:3"));
    assert_eq!(s.header.other, [("registry".to_string(), "r".to_string(), 4)]);
}

#[test]
fn other_apptainer_keys_are_kept_in_lower_case_with_their_line() {
    let s = one(
        "Bootstrap: docker\nFrom: alpine\nRegistry: quay.io\nNamespace: ns\nFingerprints: AB,CD\n\
         OtherURL0: http://a\notherurl12: http://b\nIncludeCmd: yes\nLibrary: https://l\n\
         UpdateURL: u\nProduct: p\nUser: u\nRegcode: r\nProductPGP: k\nRegisterURL: r\n\
         Modules: m\nConfURL: c\nSetOpt: s\nregistry: docker.io\n",
    );
    let keys: Vec<&str> = s.header.other.iter().map(|(k, _, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "registry",
            "namespace",
            "fingerprints",
            "otherurl0",
            "otherurl12",
            "includecmd",
            "library",
            "updateurl",
            "product",
            "user",
            "regcode",
            "productpgp",
            "registerurl",
            "modules",
            "confurl",
            "setopt"
        ]
    );
    // A key given twice keeps its last value (and line).
    assert_eq!(s.header.other[0], ("registry".into(), "docker.io".into(), 19));
    assert_eq!(s.header.other[2], ("fingerprints".into(), "AB,CD".into(), 5));
}

#[test]
fn a_key_outside_apptainers_list_is_an_error_as_in_apptainer() {
    // "invalid header keyword found" in Apptainer.
    err("Bootstrap: yum\nGPG: https://k\n", 2, &["\"gpg\"", "keyword"]);
    err("Bootstrap: zypper\nOtherURL: x\n", 2, &["\"otherurl\""]);
    err("Bootstrap: zypper\nOtherURL1a: x\n", 2, &["\"otherurl1a\""]);
    err("Bootstrap: docker\nFrom: a\n: b\n", 3, &["\"\""]);
}

#[test]
fn a_header_line_without_a_colon_is_an_error() {
    err("Bootstrap: docker\nFrom: alpine\napt-get update\n%post\n", 3, &["\"apt-get update\""]);
}

#[test]
fn the_keys_an_agent_needs_are_required() {
    err("Bootstrap: debootstrap\nMirrorURL: http://m\n", 1, &["debootstrap", "OSVersion"]);
    err("Bootstrap: debootstrap\nOSVersion: bookworm\n", 1, &["debootstrap", "MirrorURL"]);
    err("Bootstrap: localimage\n", 1, &["localimage", "From"]);
    err("Bootstrap: localimage\nFrom:\n", 1, &["From"]);
    err("\nBootstrap: docker\n%post\n", 2, &["docker", "From"]);
    for agent in
        ["docker-archive", "docker-daemon", "oci", "oci-archive", "library", "shub", "oras"]
    {
        err(&format!("Bootstrap: {agent}\n"), 1, &[agent, "From"]);
    }
    // Neither scratch nor busybox needs anything (Apptainer's busybox agent
    // wants MirrorURL, the binary's address; fr's builder decides).
    one("Bootstrap: busybox\n");
    one("Bootstrap: scratch\nFrom: ignored\n");
}

#[test]
fn a_stage_starts_with_its_bootstrap_line() {
    err("From: alpine\nBootstrap: docker\n", 1, &["\"from\"", "Bootstrap"]);
    err("# x\n%post\necho\nBootstrap: scratch\n", 2, &["%post", "Bootstrap"]);
    // An indented Bootstrap: does not start a stage, but is a header key.
    let s = one("  Bootstrap: docker\nFrom: alpine\n");
    assert_eq!(s.header.from.as_deref(), Some("alpine"));
    err("From: alpine\n  Bootstrap: docker\n", 1, &["\"from\""]);
}

#[test]
fn a_file_without_a_stage_is_an_error() {
    err("", 1, &["no stage"]);
    err("# only\n\n   \n", 1, &["no stage"]);
}

// Sections.

#[test]
fn sections_keep_their_bodies_as_written() {
    let s = one(
        "Bootstrap: scratch\n%post\n    apt-get update\n\n    # done\n%environment\n  export A=1\n\
         %help\nUsage: none\n",
    );
    let post = s.sections.post.unwrap();
    assert_eq!(post.body, "    apt-get update\n\n    # done\n");
    assert_eq!(post.shell, None);
    assert_eq!(post.line, 2);
    assert_eq!(s.sections.environment.as_deref(), Some("  export A=1\n"));
    assert_eq!(s.sections.help.as_deref(), Some("Usage: none\n"));
}

#[test]
fn section_names_are_case_insensitive() {
    let s = one("Bootstrap: scratch\n%POST\necho a\n%RunScript\necho b\n");
    assert_eq!(s.sections.post.unwrap().body, "echo a\n");
    assert_eq!(s.sections.runscript.unwrap().body, "echo b\n");
}

#[test]
fn a_repeated_section_is_concatenated_in_order() {
    let s = one("Bootstrap: scratch\n%post\n  one\n%environment\nA=1\n%post -c /bin/bash\n  two\n\
         %environment\nB=2\n%help\nh1\n%help\nh2\n");
    let post = s.sections.post.unwrap();
    assert_eq!(post.body, "  one\n  two\n");
    assert_eq!(post.line, 2);
    assert_eq!(post.shell.as_deref(), Some("/bin/bash"));
    assert_eq!(s.sections.environment.as_deref(), Some("A=1\nB=2\n"));
    assert_eq!(s.sections.help.as_deref(), Some("h1\nh2\n"));
}

#[test]
fn dash_c_names_the_shell_of_any_script_section() {
    let s = one(
        "Bootstrap: scratch\n%setup -c /bin/bash\nx\n%post  -c  /bin/bash  -l \ny\n\
         %runscript -c /bin/zsh # why\nz\n%startscript -c /bin/dash\nw\n%test -c /usr/bin/env python3\nv\n",
    );
    let sh = |s: Option<Script>| s.unwrap().shell;
    assert_eq!(sh(s.sections.setup).as_deref(), Some("/bin/bash"));
    assert_eq!(sh(s.sections.post).as_deref(), Some("/bin/bash -l"));
    assert_eq!(sh(s.sections.runscript).as_deref(), Some("/bin/zsh"));
    assert_eq!(sh(s.sections.startscript).as_deref(), Some("/bin/dash"));
    assert_eq!(sh(s.sections.test).as_deref(), Some("/usr/bin/env python3"));
}

#[test]
fn a_script_option_other_than_dash_c_is_refused() {
    err("Bootstrap: scratch\n%post -c\necho\n", 2, &["%post", "-c"]);
    err("Bootstrap: scratch\n%post -x\necho\n", 2, &["%post", "\"-x\""]);
    err("Bootstrap: scratch\n%runscript -e -c /bin/bash\necho\n", 2, &["%runscript", "\"-e\""]);
}

#[test]
fn arguments_of_data_sections_are_ignored_as_by_apptainer() {
    let s = one("Bootstrap: scratch\n%environment -c x\nA=1\n%help me\nh\n%labels x\nK V\n");
    assert_eq!(s.sections.environment.as_deref(), Some("A=1\n"));
    assert_eq!(s.sections.help.as_deref(), Some("h\n"));
    assert_eq!(s.sections.labels, [("K".to_string(), "V".to_string())]);
}

#[test]
fn an_empty_section_is_absent_but_a_blank_one_is_not() {
    let s = one("Bootstrap: scratch\n%runscript\n%post\n%help\n%environment\n\n%test\n");
    assert_eq!(s.sections.runscript, None);
    assert_eq!(s.sections.post, None);
    assert_eq!(s.sections.help, None);
    // Apptainer writes a runscript for "\n"; so does an environment.
    assert_eq!(s.sections.environment.as_deref(), Some("\n"));
    assert_eq!(s.sections.test, None);
}

#[test]
fn labels_are_key_and_rest_of_the_line() {
    let s = one(
        "Bootstrap: scratch\n%labels\n  Author alice smith \n\n  # a comment\n  Version\tv1.0\n\
         Empty\n  Author bob\n",
    );
    assert_eq!(
        s.sections.labels,
        [
            ("Author".to_string(), "bob".to_string()),
            ("Version".to_string(), "v1.0".to_string()),
            ("Empty".to_string(), String::new()),
        ]
    );
}

#[test]
fn files_are_source_and_destination_pairs() {
    let s = one(
        "Bootstrap: scratch\n%files\n  /a\n  /b /c\n\n  # comment\n  \"/with space/x\" '/dst y'\n\
         /d /e # why\n/f # only the source\n\"/g\" \"\"\n",
    );
    let f = &s.sections.files;
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].from, None);
    assert_eq!(f[0].line, 2);
    let pairs: Vec<(&str, &str)> =
        f[0].pairs.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    assert_eq!(
        pairs,
        [
            ("/a", "/a"),
            ("/b", "/c"),
            ("/with space/x", "/dst y"),
            ("/d", "/e"),
            ("/f", "/f"),
            ("/g", "/g")
        ]
    );
}

#[test]
fn a_quote_ends_a_word_as_in_apptainers_splitter() {
    let s = one("Bootstrap: scratch\n%files\n/a\"b c\"\n");
    assert_eq!(s.sections.files[0].pairs, [("/a".to_string(), "b c".to_string())]);
}

#[test]
fn a_bad_files_line_is_an_error() {
    err("Bootstrap: scratch\n%files\n/a /b /c\n", 3, &["\"/c\""]);
    err("Bootstrap: scratch\n%files\n\n  \"/a /b\n", 4, &["unclosed"]);
    err("Bootstrap: scratch\n%files\n\"\" /b\n", 3, &["empty source"]);
    err("Bootstrap: scratch\n%files into x\n/a\n", 2, &["%files", "\"into x\""]);
    err("Bootstrap: scratch\n%files from\n/a\n", 2, &["\"from\""]);
}

#[test]
fn files_from_a_stage_name_an_earlier_stage() {
    let d = ok("Bootstrap: scratch\nStage: build\n%post\nmake\n\
         Bootstrap: scratch\n%files from build # the binary\n  /out/app /usr/bin/app\n");
    let f = &d.stages[1].sections.files;
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].from.as_deref(), Some("build"));
    assert_eq!(f[0].line, 6);
    assert_eq!(f[0].pairs, [("/out/app".to_string(), "/usr/bin/app".to_string())]);
    err("Bootstrap: scratch\n%files from nowhere\n/a\n", 2, &["nowhere"]);
    // Itself or a later stage is not an earlier one.
    err("Bootstrap: scratch\nStage: a\n%files from a\n/x\n", 3, &["a"]);
    err("Bootstrap: scratch\n%files from b\n/x\nBootstrap: scratch\nStage: b\n", 2, &["b"]);
}

#[test]
fn files_blocks_with_the_same_source_are_joined() {
    let d =
        ok("Bootstrap: scratch\nStage: one\nBootstrap: scratch\n%files\n/a\n%files from one\n/x\n\
         %files\n/b\n%files FROM one\n/y\n");
    let f = &d.stages[1].sections.files;
    assert_eq!(f.len(), 2);
    assert_eq!((f[0].from.as_deref(), f[0].line), (None, 4));
    assert_eq!(f[0].pairs, [("/a".into(), "/a".into()), ("/b".into(), "/b".into())]);
    assert_eq!((f[1].from.as_deref(), f[1].line), (Some("one"), 6));
    assert_eq!(f[1].pairs, [("/x".into(), "/x".into()), ("/y".into(), "/y".into())]);
}

#[test]
fn an_unknown_section_is_an_error_naming_it() {
    err("Bootstrap: scratch\n%post\necho\n%postt\n", 4, &["%postt", "unknown"]);
    err("Bootstrap: scratch\n%Default\n", 2, &["%Default"]);
    err("Bootstrap: scratch\n%\n", 2, &["\"%\"", "no name"]);
}

#[test]
fn app_sections_are_refused_by_name() {
    for app in APP_SECTIONS_FOR_TEST {
        let e = err(&format!("Bootstrap: scratch\n\n%{app} foo\necho\n"), 3, &[app, "scif"]);
        for other in APP_SECTIONS_FOR_TEST {
            assert!(e.why.contains(other), "{e}");
        }
    }
}

const APP_SECTIONS_FOR_TEST: [&str; 8] =
    ["appinstall", "applabels", "appfiles", "appenv", "apptest", "apphelp", "apprun", "appstart"];

#[test]
fn pre_is_refused() {
    err("Bootstrap: scratch\n%pre\necho\n", 2, &["%pre"]);
}

#[test]
fn a_percent_word_starts_a_section_even_inside_a_script() {
    // As in Apptainer: the first word decides, so this ends %post.
    err("Bootstrap: scratch\n%post\nprintf x\n%s\n", 4, &["%s"]);
    // Indented, Apptainer cannot name it; fr says so.
    err("Bootstrap: scratch\n%post\n  %files\n", 3, &["%files", "indented"]);
    // Not the first word: text.
    let s = one("Bootstrap: scratch\n%post\nprintf '%s\\n' 100%\n");
    assert_eq!(s.sections.post.unwrap().body, "printf '%s\\n' 100%\n");
}

// Stages.

#[test]
fn each_bootstrap_line_starts_a_stage_with_its_own_header_and_sections() {
    let d =
        ok("# build\nBootstrap: docker\nFrom: golang:1.22\nStage: build\n\n%post\n  go build\n\n\
         bootstrap: localimage\nFROM: base.sif\nStage: final\n%files from build\n  /go/app /app\n\
         %runscript\n  exec /app\n");
    assert_eq!(d.stages.len(), 2);
    let (a, b) = (&d.stages[0], &d.stages[1]);
    assert_eq!(a.name.as_deref(), Some("build"));
    assert_eq!(a.header.bootstrap, Agent::Other("docker".into()));
    assert_eq!(a.header.from.as_deref(), Some("golang:1.22"));
    assert_eq!(a.sections.post.as_ref().unwrap().body, "  go build\n\n");
    assert_eq!(a.sections.runscript, None);
    assert_eq!(b.name.as_deref(), Some("final"));
    assert_eq!(b.header.bootstrap, Agent::LocalImage);
    assert_eq!(b.header.from.as_deref(), Some("base.sif"));
    assert_eq!(b.sections.runscript.as_ref().unwrap().line, 14);
    assert_eq!(b.sections.post, None);
}

#[test]
fn a_bootstrap_line_in_a_script_starts_a_stage_as_in_apptainer() {
    let d = ok("Bootstrap: scratch\n%post\ncat <<EOF\nBootstrap: scratch\n");
    assert_eq!(d.stages.len(), 2);
    assert_eq!(d.stages[0].sections.post.as_ref().unwrap().body, "cat <<EOF\n");
    // The second stage's header has the line "EOF", which is no header line.
    err("Bootstrap: scratch\n%post\ncat <<EOF\nBootstrap: scratch\nEOF\nx\n", 5, &["\"EOF\""]);
}

#[test]
fn windows_line_ends_are_read_as_apptainer_reads_them() {
    let s =
        one("Bootstrap: docker\r\nFrom: alpine\r\n\r\n%post\r\n  echo hi\r\n%labels\r\nA b\r\n");
    assert_eq!(s.header.from.as_deref(), Some("alpine"));
    assert_eq!(s.sections.post.unwrap().body, "  echo hi\n");
    assert_eq!(s.sections.labels, [("A".into(), "b".into())]);
    err("Bootstrap: docker\r\nFrom: a\r\n\r\n%nope\r\n", 4, &["%nope"]);
}

// Templates.

#[test]
fn templates_take_the_arguments_defaults() {
    let s =
        one("Bootstrap: docker\nFrom: debian:{{ RELEASE }}\n\n%arguments\n  RELEASE=bookworm\n\
         # a comment\n  GREETING = hello world \n  EMPTY=\n  NOT A PAIR\n\n%post\n\
         echo {{GREETING}}{{EMPTY}}\n\techo {{\tRELEASE\t}}\n");
    assert_eq!(s.header.from.as_deref(), Some("debian:bookworm"));
    assert_eq!(s.sections.post.unwrap().body, "echo hello world\n\techo bookworm\n");
    assert_eq!(
        s.sections.arguments,
        args(&[("RELEASE", "bookworm"), ("GREETING", "hello world"), ("EMPTY", "")])
    );
}

#[test]
fn the_callers_arguments_override_the_defaults() {
    let text = "Bootstrap: docker\nFrom: debian:{{ RELEASE }}\n%arguments\nRELEASE=bookworm\n";
    let d = parse(text, &args(&[("RELEASE", "trixie")])).unwrap();
    assert_eq!(d.stages[0].header.from.as_deref(), Some("debian:trixie"));
    assert_eq!(d.stages[0].sections.arguments, args(&[("RELEASE", "trixie")]));
    // Without a default, the caller's value is enough.
    let d = parse("Bootstrap: docker\nFrom: {{IMAGE}}\n", &args(&[("IMAGE", "alpine")])).unwrap();
    assert_eq!(d.stages[0].header.from.as_deref(), Some("alpine"));
}

#[test]
fn an_undefined_variable_is_an_error_naming_it_and_its_line() {
    err("Bootstrap: scratch\n%post\n\necho {{ MISSING }}\n", 4, &["MISSING", "--build-arg"]);
    // Across lines, the template's first line.
    err("Bootstrap: scratch\n%post\necho {{\n  MISSING\n}}\n", 3, &["MISSING"]);
}

#[test]
fn an_unclosed_template_is_an_error_with_its_line() {
    err("Bootstrap: scratch\n%post\necho {{ VERSION\n", 3, &["{{ VERSION", "unclosed"]);
    err("Bootstrap: scratch\n%post\necho {{VERSION}\n", 3, &["VERSION"]);
    err("Bootstrap: docker\nFrom: a:{{ TAG", 2, &["TAG"]);
}

#[test]
fn braces_that_are_no_template_are_text_as_in_apptainer() {
    let s = one("Bootstrap: scratch\n%post\ndocker inspect -f '{{.Id}}' x\necho {{ a | b }}\n\
         echo {{a,b},c}\necho {{}}\necho {{{ X }}}\n%arguments\nX=1\n");
    assert_eq!(
        s.sections.post.unwrap().body,
        "docker inspect -f '{{.Id}}' x\necho {{ a | b }}\necho {{a,b},c}\necho {{}}\necho {1}\n"
    );
}

#[test]
fn templates_on_comment_lines_are_left_as_apptainer_leaves_them() {
    let s = one(
        "Bootstrap: scratch\n# uses {{ UNSET }}\n%post\n  # {{ UNSET }}\n  echo x # {{ UNSET }}\n\
         #!/bin/{{ SH }}\n{{ SH }} #{{ SH }}\necho {{ SH }}#x {{ UNSET }}\n# {{ UNSET\n\
         %arguments\nSH=bash\n",
    );
    assert_eq!(
        s.sections.post.unwrap().body,
        "  # {{ UNSET }}\n  echo x # {{ UNSET }}\n#!/bin/bash\nbash #bash\n\
         echo bash#x {{ UNSET }}\n# {{ UNSET\n"
    );
}

#[test]
fn a_values_own_templates_are_replaced_once() {
    let text = "Bootstrap: scratch\n%arguments\nA=x\nB={{ A }}-{{ D }}-# {{ C }}\nD={{ B }}\n\
                %post\necho {{ B }} {{ D }}\n";
    let s = parse(text, &args(&[("C", "c")])).unwrap().stages.remove(0);
    // B's own templates: A and C replaced, D's raw value put in as it is.
    assert_eq!(s.sections.post.unwrap().body, "echo x-{{ B }}-# c {{ A }}-{{ D }}-# {{ C }}\n");
    // The %arguments lines are text too, so their templates are used; but
    // C is only inside a value (its own line holds it after `#`), which
    // Apptainer does not count.
    let used: Vec<&str> = s.sections.arguments.keys().map(String::as_str).collect();
    assert_eq!(used, ["A", "B", "D"]);
}

#[test]
fn each_stage_has_its_own_defaults_and_the_callers_arguments_reach_all() {
    let text = "Bootstrap: scratch\n%arguments\nV=1\n%post\necho {{ V }}\n\
                Bootstrap: scratch\n%post\necho {{ V }}\n";
    err(text, 8, &["V"]);
    let d = parse(text, &args(&[("V", "9"), ("W", "0")])).unwrap();
    assert_eq!(d.stages[0].sections.post.as_ref().unwrap().body, "echo 9\n");
    assert_eq!(d.stages[1].sections.post.as_ref().unwrap().body, "echo 9\n");
    assert_eq!(d.unused_args(&args(&[("V", "9"), ("W", "0")])), ["W"]);
}

#[test]
fn values_with_newlines_keep_errors_on_the_lines_written() {
    let a = args(&[("CMDS", "a\nb\nc")]);
    let d = parse("Bootstrap: scratch\n%post\n{{ CMDS }}\n%labels\nK v\n", &a).unwrap();
    assert_eq!(d.stages[0].sections.post.as_ref().unwrap().body, "a\nb\nc\n");
    err_with("Bootstrap: scratch\n%post\n{{ CMDS }}\n%nope\n", &a, 4, &["%nope"]);
    err_with(
        "Bootstrap: scratch\n%files\n{{ CMDS }} x y\n",
        &args(&[("CMDS", "a\nb")]),
        3,
        &["\"y\""],
    );
}

#[test]
fn a_value_that_grows_the_stage_without_bound_is_an_error() {
    let big = "x".repeat(1 << 20);
    let uses = "{{ B }}".repeat(20);
    let text = format!("Bootstrap: scratch\n%post\n{uses}\n");
    err_with(&text, &args(&[("B", &big)]), 3, &["B", "MiB"]);
    // A value holding its own template grows with each of its repeats.
    let selfish = "{{ A }}".repeat(12);
    err_with("Bootstrap: scratch\n\n%post\n{{ A }}\n", &args(&[("A", &selfish)]), 4, &["A", "MiB"]);
    let s = parse("Bootstrap: scratch\n%post\n{{ A }}\n", &args(&[("A", "{{A}}{{A}}")])).unwrap();
    assert_eq!(s.stages[0].sections.post.as_ref().unwrap().body, "{{A}}".repeat(8) + "\n");
}

#[test]
fn unused_arguments_are_the_callers_that_no_template_used() {
    let a = args(&[("A", "1"), ("B", "2"), ("C", "3")]);
    let d =
        parse("Bootstrap: scratch\n%arguments\nC=0\n%post\n# {{ B }}\necho {{ A }}\n", &a).unwrap();
    assert_eq!(d.unused_args(&a), ["B", "C"]);
}

// A whole file.

/// The example of Apptainer's "Definition Files" page that uses every
/// section, on debootstrap.
const DEMO: &str = r#"Bootstrap: debootstrap
OSVersion: bookworm
MirrorURL: http://deb.debian.org/debian
Include: ca-certificates, netcat-openbsd
Stage: final

%setup
    touch /file1
    touch ${APPTAINER_ROOTFS}/file2

%files
    /file1
    /file1 /opt

%environment
    export LISTEN_PORT=12345
    export LC_ALL=C

%post
    apt-get update && apt-get install -y netcat-openbsd
    NOW=`date`
    echo "export NOW=\"${NOW}\"" >> $APPTAINER_ENVIRONMENT

%runscript
    echo "Container was created $NOW"
    echo "Arguments received: $*"
    exec echo "$@"

%startscript
    nc -lp $LISTEN_PORT

%test
    grep -q NAME=\"Debian GNU/Linux\" /etc/os-release
    if [ $? -eq 0 ]; then
        echo "Container base is Debian as expected."
    else
        echo "Container base is not Debian."
        exit 1
    fi

%labels
    Author alice
    Version v0.0.1

%help
    This is a demo container used to illustrate a def file that uses all
    supported sections.
"#;

#[test]
fn apptainers_demo_file_parses_end_to_end() {
    let s = one(DEMO);
    let script = |body: &str, line| Some(Script { shell: None, body: body.into(), line });
    let expected = Stage {
        name: Some("final".into()),
        header: Header {
            bootstrap: Agent::Debootstrap,
            from: None,
            os_version: Some("bookworm".into()),
            mirror_url: Some("http://deb.debian.org/debian".into()),
            include: vec!["ca-certificates".into(), "netcat-openbsd".into()],
            other: vec![],
        },
        sections: Sections {
            arguments: BTreeMap::new(),
            setup: script("    touch /file1\n    touch ${APPTAINER_ROOTFS}/file2\n\n", 7),
            files: vec![Files {
                from: None,
                pairs: vec![("/file1".into(), "/file1".into()), ("/file1".into(), "/opt".into())],
                line: 11,
            }],
            post: script(
                "    apt-get update && apt-get install -y netcat-openbsd\n    NOW=`date`\n    \
                 echo \"export NOW=\\\"${NOW}\\\"\" >> $APPTAINER_ENVIRONMENT\n\n",
                19,
            ),
            environment: Some("    export LISTEN_PORT=12345\n    export LC_ALL=C\n\n".into()),
            runscript: script(
                "    echo \"Container was created $NOW\"\n    echo \"Arguments received: $*\"\n    \
                 exec echo \"$@\"\n\n",
                24,
            ),
            startscript: script("    nc -lp $LISTEN_PORT\n\n", 29),
            test: script(
                "    grep -q NAME=\\\"Debian GNU/Linux\\\" /etc/os-release\n    if [ $? -eq 0 ]; \
                 then\n        echo \"Container base is Debian as expected.\"\n    else\n        \
                 echo \"Container base is not Debian.\"\n        exit 1\n    fi\n\n",
                32,
            ),
            labels: vec![("Author".into(), "alice".into()), ("Version".into(), "v0.0.1".into())],
            help: Some(
                "    This is a demo container used to illustrate a def file that uses all\n    \
                 supported sections.\n"
                    .into(),
            ),
        },
    };
    assert_eq!(s, expected);
}

#[test]
fn a_multi_stage_file_with_arguments_parses_end_to_end() {
    let text = r#"# Build a static binary, then copy it into a small image.
Bootstrap: docker
From: golang:{{ GO_VERSION }}-bookworm
Stage: build

%arguments
    GO_VERSION=1.22

%files
    ./src /src

%post -c /bin/bash
    set -euo pipefail
    cd /src && CGO_ENABLED=0 go build -o /out/app .

Bootstrap: debootstrap
OSVersion: {{ RELEASE }}
MirrorURL: http://deb.debian.org/debian
Include: ca-certificates

%arguments
    RELEASE=bookworm

%files from build
    /out/app /usr/local/bin/app

%runscript
    exec /usr/local/bin/app "$@"

%labels
    org.opencontainers.image.title app
    built-with go{{ GO_VERSION }}
"#;
    let a = args(&[("RELEASE", "trixie"), ("GO_VERSION", "1.23")]);
    let d = parse(text, &a).unwrap();
    assert_eq!(d.stages.len(), 2);
    let (build, fin) = (&d.stages[0], &d.stages[1]);
    assert_eq!(build.header.from.as_deref(), Some("golang:1.23-bookworm"));
    let post = build.sections.post.as_ref().unwrap();
    assert_eq!((post.shell.as_deref(), post.line), (Some("/bin/bash"), 12));
    assert_eq!(build.sections.files[0].pairs, [("./src".into(), "/src".into())]);
    assert_eq!(fin.header.os_version.as_deref(), Some("trixie"));
    assert_eq!(fin.sections.files[0].from.as_deref(), Some("build"));
    assert_eq!(fin.sections.files[0].line, 24);
    assert_eq!(
        fin.sections.labels,
        [
            ("org.opencontainers.image.title".into(), "app".into()),
            ("built-with".into(), "go1.23".into())
        ]
    );
    assert_eq!(fin.sections.arguments, args(&[("RELEASE", "trixie"), ("GO_VERSION", "1.23")]));
    assert!(d.unused_args(&a).is_empty());
}

#[test]
fn no_input_of_any_bytes_panics() {
    // A few shapes the fuzz target found worth keeping as cases.
    for text in [
        "\u{0}",
        "%",
        "{{",
        "{{ ",
        "{{ a",
        "}}",
        "\\",
        ":\\",
        "Bootstrap: scratch\n%files\n\"",
        "Bootstrap: scratch\n%files\n'é",
        "bootstrap:",
        "BOOTSTRAP:\u{e9}",
        "é{{é}}é\n{{ é",
        "Bootstrap: scratch\n%post\n{{\u{a0}X\u{a0}}}",
        "\r",
        "\r\n\r\n",
        "Bootstrap: scratch\\\n",
    ] {
        let _ = parse(text, &no_args());
        let _ = parse(text, &args(&[("é", "{{ é }}"), ("X", "{{X}}")]));
    }
}
