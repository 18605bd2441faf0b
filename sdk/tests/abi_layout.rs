//! The C header against the Rust ABI. A C program that includes `include/cgigate_plugin.h`
//! prints the size, alignment and offset of every field of both tables and the value of every
//! constant; each must equal what `cgigate_plugin::abi` says, and each field's C type is
//! checked by the C compiler (as its Rust type is by rustc). The example C plugins and the
//! header's own example must build with every warning an error. Needs `cc`: without it the
//! tests are skipped, except under CI.

use std::collections::BTreeMap;
use std::ffi::{c_char, c_void};
use std::fmt::Write as _;
use std::io::Write as _;
use std::mem::{align_of, offset_of, size_of};
use std::path::{Path, PathBuf};
use std::process::Command;

use cgigate_plugin::abi::{self, PluginDescriptor, RequestAbi};

/// Flags every C file here must build with.
const CFLAGS: &[&str] = &["-std=c99", "-Wall", "-Wextra", "-Wpedantic", "-Werror"];

/// One field: its name, its type as the header must spell it, and its size and offset in
/// the Rust struct.
struct Field {
    name: &'static str,
    c_type: &'static str,
    size: usize,
    offset: usize,
}

/// One struct of the ABI, as Rust lays it out.
struct Table {
    c_name: &'static str,
    size: usize,
    align: usize,
    fields: Vec<Field>,
}

/// The size of what `_field` returns: a field's size without an instance.
fn size_of_field<T, F>(_field: fn(&T) -> F) -> usize {
    size_of::<F>()
}

/// `table!(Rust as "c_name" { field: "C type" => RustType, ... })`, every field in order.
/// Naming the Rust type makes rustc check it; the C type is checked by the C program.
macro_rules! table {
    ($rust:ty as $c_name:literal { $($field:ident: $c_type:literal => $rust_type:ty,)* }) => {
        Table {
            c_name: $c_name,
            size: size_of::<$rust>(),
            align: align_of::<$rust>(),
            fields: vec![$(Field {
                name: stringify!($field),
                c_type: $c_type,
                size: size_of_field(|t: &$rust| -> $rust_type { t.$field }),
                offset: offset_of!($rust, $field),
            }),*],
        }
    };
}

fn tables() -> [Table; 2] {
    [
        table!(RequestAbi as "cgigate_request" {
            size: "uint32_t" => u32,
            abi_version: "uint32_t" => u32,
            server: "void *" => *mut c_void,
            get_var: "int32_t (*)(void *, const char *, char *, size_t *)"
                => unsafe extern "C" fn(*mut c_void, *const c_char, *mut c_char, *mut usize) -> i32,
            read_body: "int64_t (*)(void *, void *, size_t)"
                => unsafe extern "C" fn(*mut c_void, *mut c_void, usize) -> i64,
            send_headers: "int32_t (*)(void *, uint32_t, const char *, size_t)"
                => unsafe extern "C" fn(*mut c_void, u32, *const c_char, usize) -> i32,
            write: "int32_t (*)(void *, const void *, size_t)"
                => unsafe extern "C" fn(*mut c_void, *const c_void, usize) -> i32,
            flush: "int32_t (*)(void *)" => unsafe extern "C" fn(*mut c_void) -> i32,
            set_mode: "int32_t (*)(void *, uint32_t, uint64_t)"
                => unsafe extern "C" fn(*mut c_void, u32, u64) -> i32,
            is_connected: "int32_t (*)(void *)" => unsafe extern "C" fn(*mut c_void) -> i32,
            reserved: "void *[8]" => [*mut c_void; 8],
        }),
        table!(PluginDescriptor as "cgigate_plugin" {
            size: "uint32_t" => u32,
            abi_version: "uint32_t" => u32,
            name: "const char *" => *const c_char,
            init: "int32_t (*)(const char *, size_t, char *, size_t)"
                => Option<unsafe extern "C" fn(*const c_char, usize, *mut c_char, usize) -> i32>,
            handle: "int32_t (*)(cgigate_request *)"
                => Option<unsafe extern "C" fn(*mut RequestAbi) -> i32>,
            terminate: "void (*)(void)" => Option<unsafe extern "C" fn()>,
            reserved: "void *[4]" => [*mut c_void; 4],
        }),
    ]
}

/// Every constant of the header, with its value in Rust.
fn constants() -> [(&'static str, i64); 12] {
    [
        ("CGIGATE_ABI_VERSION", abi::ABI_VERSION.into()),
        ("CGIGATE_OK", abi::OK.into()),
        ("CGIGATE_ERROR", abi::ERROR.into()),
        ("CGIGATE_E_DISCONNECTED", abi::E_DISCONNECTED.into()),
        ("CGIGATE_E_STATE", abi::E_STATE.into()),
        ("CGIGATE_E_INVALID", abi::E_INVALID.into()),
        ("CGIGATE_E_TOO_SMALL", abi::E_TOO_SMALL.into()),
        ("CGIGATE_E_NOT_FOUND", abi::E_NOT_FOUND.into()),
        ("CGIGATE_MODE_BUFFER", abi::MODE_BUFFER.into()),
        ("CGIGATE_MODE_STREAM", abi::MODE_STREAM.into()),
        ("CGIGATE_MODE_AUTO", abi::MODE_AUTO.into()),
        ("CGIGATE_MODE_SIZED", abi::MODE_SIZED.into()),
    ]
}

/// The exported function's name, from the symbol the loader looks up.
fn descriptor_symbol() -> &'static str {
    let name = abi::DESCRIPTOR_SYMBOL
        .strip_suffix(b"\0")
        .expect("NUL-terminated");
    std::str::from_utf8(name).expect("ASCII")
}

/// What the C program must print, one `key value` per line.
fn expected() -> BTreeMap<String, String> {
    let mut lines = BTreeMap::new();
    for table in tables() {
        lines.insert(format!("sizeof {}", table.c_name), table.size.to_string());
        lines.insert(format!("alignof {}", table.c_name), table.align.to_string());
        for field in &table.fields {
            let key = format!("{}.{}", table.c_name, field.name);
            lines.insert(format!("sizeof {key}"), field.size.to_string());
            lines.insert(format!("offsetof {key}"), field.offset.to_string());
        }
    }
    for (name, value) in constants() {
        lines.insert(format!("const {name}"), value.to_string());
    }
    // What CGIGATE_PLUGIN() fills in.
    lines.insert(
        "descriptor size".into(),
        size_of::<PluginDescriptor>().to_string(),
    );
    lines.insert(
        "descriptor abi_version".into(),
        abi::ABI_VERSION.to_string(),
    );
    lines
}

/// The C program: prints every line of [`expected`]; fails to compile if a field's type,
/// the exported function's name or type, or the CGIGATE_PLUGIN() macro is wrong.
fn c_program() -> String {
    let mut c = String::from(
        "#include <stddef.h>\n#include <stdio.h>\n\
         #include \"cgigate_plugin.h\"\n#include \"cgigate_plugin.h\" /* include guard */\n\n\
         static int32_t handle(cgigate_request *request) { (void)request; return CGIGATE_OK; }\n\
         CGIGATE_PLUGIN(\"layout\", NULL, handle, NULL)\n\n",
    );
    for table in tables() {
        let t = table.c_name;
        writeln!(c, "typedef struct {{ char c; {t} t; }} align_{t};").unwrap();
        writeln!(c, "static void types_{t}({t} *t) {{").unwrap();
        for f in &table.fields {
            let name = f.name;
            writeln!(
                c,
                "    __typeof__({}) *{name} = &t->{name}; (void){name};",
                f.c_type
            )
            .unwrap();
        }
        c.push_str("}\n");
    }
    c.push_str("\nint main(void) {\n");
    writeln!(
        c,
        "    __typeof__(const cgigate_plugin *(*)(void)) describe = {};",
        descriptor_symbol()
    )
    .unwrap();
    c.push_str("    const cgigate_plugin *d = describe();\n");
    c.push_str("    printf(\"descriptor size %u\\n\", (unsigned)d->size);\n");
    c.push_str("    printf(\"descriptor abi_version %u\\n\", (unsigned)d->abi_version);\n");
    for table in tables() {
        let t = table.c_name;
        writeln!(c, "    (void)types_{t};").unwrap();
        writeln!(c, "    printf(\"sizeof {t} %zu\\n\", sizeof({t}));").unwrap();
        writeln!(
            c,
            "    printf(\"alignof {t} %zu\\n\", offsetof(align_{t}, t));"
        )
        .unwrap();
        for f in &table.fields {
            let name = f.name;
            writeln!(
                c,
                "    printf(\"sizeof {t}.{name} %zu\\n\", sizeof((({t} *)0)->{name}));"
            )
            .unwrap();
            writeln!(
                c,
                "    printf(\"offsetof {t}.{name} %zu\\n\", offsetof({t}, {name}));"
            )
            .unwrap();
        }
    }
    for (name, _) in constants() {
        writeln!(
            c,
            "    printf(\"const {name} %lld\\n\", (long long)({name}));"
        )
        .unwrap();
    }
    c.push_str("    return 0;\n}\n");
    c
}

/// The repository's root (the SDK crate is `sdk/`).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A fresh folder under the system's temp folder, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("cgigate-abi-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp folder");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Whether `cc` can be run. Without it, a failure under CI (`CI=true`), else a skip note on
/// stderr (written directly, so the test harness does not capture it).
fn have_cc() -> bool {
    match Command::new("cc").arg("--version").output() {
        Ok(_) => true,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("missing cc (apt-get install gcc)");
            }
            let _ = writeln!(
                std::io::stderr(),
                "skipped: cc not installed (apt-get install gcc)"
            );
            false
        }
        Err(e) => panic!("cannot run cc: {e}"),
    }
}

/// Run `cc` with `args` after [`CFLAGS`] and `-I include`; panics with its output on failure.
fn cc(args: &[&Path]) {
    let include = root().join("include");
    let output = Command::new("cc")
        .args(CFLAGS)
        .arg("-I")
        .arg(&include)
        .args(args)
        .output()
        .expect("run cc");
    assert!(
        output.status.success(),
        "cc {:?} failed:\n{}",
        args,
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn header_matches_the_rust_abi() {
    if !have_cc() {
        return;
    }
    let dir = TempDir::new("layout");
    let source = dir.0.join("layout.c");
    let program = dir.0.join("layout");
    std::fs::write(&source, c_program()).expect("write layout.c");
    cc(&[Path::new("-o"), &program, &source]);
    let output = Command::new(&program)
        .output()
        .expect("run the layout program");
    assert!(output.status.success(), "layout program failed");
    let stdout = String::from_utf8(output.stdout).expect("UTF-8");
    let found: BTreeMap<String, String> = stdout
        .lines()
        .filter_map(|line| line.rsplit_once(' '))
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .collect();

    let expected = expected();
    let mut differences = Vec::new();
    for key in expected
        .keys()
        .chain(found.keys().filter(|k| !expected.contains_key(*k)))
    {
        let (c, rust) = (found.get(key), expected.get(key));
        if c != rust {
            differences.push(format!("{key}: C {c:?}, Rust {rust:?}"));
        }
    }
    assert!(
        differences.is_empty(),
        "header and abi.rs differ:\n{}",
        differences.join("\n")
    );
}

#[test]
fn example_plugins_build_without_warnings() {
    if !have_cc() {
        return;
    }
    let dir = TempDir::new("examples");
    for name in ["hello", "wrong_abi", "wrong_size"] {
        let source = root().join(format!("examples/plugins/c/{name}.c"));
        let library = dir.0.join(format!("lib{name}.so"));
        cc(&[
            Path::new("-shared"),
            Path::new("-fPIC"),
            Path::new("-o"),
            &library,
            &source,
        ]);
    }
}

/// The minimal plugin in the header's opening comment compiles as it stands.
#[test]
fn header_example_builds() {
    if !have_cc() {
        return;
    }
    let header =
        std::fs::read_to_string(root().join("include/cgigate_plugin.h")).expect("read header");
    let example: String = header
        .lines()
        .skip_while(|line| !line.contains("A MINIMAL PLUGIN"))
        .skip(1)
        .take_while(|line| !line.contains("in the server's config"))
        .map(|line| format!("{}\n", line.strip_prefix(" *").unwrap_or(line)))
        .collect();
    assert!(
        example.contains("CGIGATE_PLUGIN("),
        "example not found in the header"
    );
    let dir = TempDir::new("example");
    let source = dir.0.join("hi.c");
    let library = dir.0.join("libhi.so");
    std::fs::write(&source, example).expect("write hi.c");
    cc(&[
        Path::new("-shared"),
        Path::new("-fPIC"),
        Path::new("-o"),
        &library,
        &source,
    ]);
}
