//! Bad requests, one table (RFC 9112, SPEC §3): each row is sent on a fresh connection to one
//! server, followed on the same connection by a pipelined `GET /echo?follow-up`. A row says
//! what the server answers and whether the follow-up must be refused (nothing more answered,
//! the connection closed) or answered — so the valid rows prove keep-alive still works where
//! it should, and the bad ones prove nothing left on a refused connection is ever parsed.
//!
//! `/echo` reads the body; `/status` does not. Limits are small so crossing them is cheap.

use std::io::Write;
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::support::{panic_text, server, Client, Response, Server};

use Next::{Answered, Refused};
use Outcome::{Closed, Status};

/// Server keys for the table: small limits, and timeouts short enough that a row the server
/// wrongly waits on fails with a 408 rather than the client's read timeout.
const KEYS: &str = "max_head_bytes = 4096\nmax_headers = 20\nmax_body_bytes = 65536\n\
                    header_timeout = \"3s\"\nbody_timeout = \"3s\"\nkeep_alive_timeout = \"3s\"";
const MAX_HEAD: usize = 4096;
const MAX_HEADERS: usize = 20;
const MAX_BODY: usize = 65536;
/// The decoder's limit for a chunk-size line, CRLF included (src/http/decode.rs).
const MAX_CHUNK_LINE: usize = 16 * 1024;

/// Sent after every row's bytes, in the same write as its last piece.
const FOLLOW_UP: &[u8] = b"GET /echo?follow-up HTTP/1.1\r\nHost: t\r\n\r\n";

/// What the client reads first (interim 1xx responses are skipped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// One complete response with this status.
    Status(u16),
    /// The connection closes with no response.
    Closed,
}

/// What becomes of the follow-up request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    /// It gets its own 200 on the same connection.
    Answered,
    /// Nothing more is answered: the connection closes.
    Refused,
}

struct Row {
    name: &'static str,
    /// Written in order, each with a flush: a client writing in parts.
    pieces: Vec<Vec<u8>>,
    /// Shut down the sending side after the pieces (no follow-up then).
    eof: bool,
    expect: Outcome,
    next: Next,
    /// Text the first response's body must hold (e.g. the body length /echo saw).
    body_has: Option<String>,
}

/// A row sent in one piece.
fn row(name: &'static str, raw: impl AsRef<[u8]>, expect: Outcome, next: Next) -> Row {
    split(name, &[raw.as_ref()], expect, next)
}

/// A row sent in several pieces.
fn split(name: &'static str, pieces: &[&[u8]], expect: Outcome, next: Next) -> Row {
    Row {
        name,
        pieces: pieces.iter().map(|p| p.to_vec()).collect(),
        eof: false,
        expect,
        next,
        body_has: None,
    }
}

/// A row that ends with the client closing its sending side: nothing can follow it.
fn eof(name: &'static str, pieces: &[&[u8]], expect: Outcome) -> Row {
    Row {
        eof: true,
        ..split(name, pieces, expect, Refused)
    }
}

impl Row {
    fn body_has(mut self, text: &str) -> Row {
        self.body_has = Some(text.to_string());
        self
    }

    /// For /echo rows: the body length the handler saw.
    fn body_len(self, n: usize) -> Row {
        self.body_has(&format!("body-length: {n}\n"))
    }
}

// ---- request builders ----

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// `POST /echo` on 1.1 with `Host: t`, then `fields` (each ending in CRLF), the empty line and
/// `body`.
fn post(fields: impl AsRef<[u8]>, body: impl AsRef<[u8]>) -> Vec<u8> {
    cat(&[
        b"POST /echo HTTP/1.1\r\nHost: t\r\n",
        fields.as_ref(),
        b"\r\n",
        body.as_ref(),
    ])
}

/// A chunked `POST /echo` with `body` as the raw chunked framing.
fn chunked(body: impl AsRef<[u8]>) -> Vec<u8> {
    post("Transfer-Encoding: chunked\r\n", body)
}

/// `GET /echo` on 1.1 with `Host: t` and `fields`.
fn get(fields: impl AsRef<[u8]>) -> Vec<u8> {
    cat(&[
        b"GET /echo HTTP/1.1\r\nHost: t\r\n",
        fields.as_ref(),
        b"\r\n",
    ])
}

/// `GET /echo` on 1.1 with exactly `fields` (no Host of its own).
fn get_bare(fields: impl AsRef<[u8]>) -> Vec<u8> {
    cat(&[b"GET /echo HTTP/1.1\r\n", fields.as_ref(), b"\r\n"])
}

/// A request line, then `Host: t` and the empty line.
fn line(request_line: impl AsRef<[u8]>) -> Vec<u8> {
    cat(&[request_line.as_ref(), b"\r\nHost: t\r\n\r\n"])
}

/// `GET /echo` with `Host: <value>`.
fn host(value: impl AsRef<[u8]>) -> Vec<u8> {
    cat(&[b"GET /echo HTTP/1.1\r\nHost: ", value.as_ref(), b"\r\n\r\n"])
}

/// A well-formed chunked body carrying `hello`.
const HELLO_CHUNKED: &str = "5\r\nhello\r\n0\r\n\r\n";

// ---- the table: one row per line (rustfmt::skip keeps it a table) ----

fn rows() -> Vec<Row> {
    let mut rows = Vec::new();
    rows.extend(framing_rows());
    rows.extend(transfer_encoding_rows());
    rows.extend(chunk_rows());
    rows.extend(header_rows());
    rows.extend(request_line_rows());
    rows.extend(host_rows());
    rows.extend(limit_rows());
    rows.extend(pipelining_and_expect_rows());
    rows.extend(split_and_eof_rows());
    rows
}

/// Content-Length, and its combinations with Transfer-Encoding (RFC 9112 §6.1–§6.3).
#[rustfmt::skip]
fn framing_rows() -> Vec<Row> {
    let te_cl = "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n";
    vec![
        row("cl_valid", post("Content-Length: 5\r\n", "hello"), Status(200), Answered).body_len(5),
        row("cl_zero", post("Content-Length: 0\r\n", ""), Status(200), Answered).body_len(0),
        row("cl_on_get", cat(&[&get("Content-Length: 5\r\n"), b"hello"]), Status(200), Answered).body_len(5),
        row("cl_body_to_status_is_drained", b"POST /status HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello", Status(200), Answered),
        row("cl_ows_around_value", post("Content-Length: \t 5 \t\r\n", "hello"), Status(200), Answered).body_len(5),
        row("cl_leading_zeros", post("Content-Length: 0000000000000000000000005\r\n", "hello"), Status(200), Answered).body_len(5),
        row("cl_then_te", post("Content-Length: 3\r\nTransfer-Encoding: chunked\r\n", "0\r\n\r\n"), Status(400), Refused),
        row("te_then_cl", post(te_cl, "8\r\nSMUGGLED\r\n0\r\n\r\n"), Status(400), Refused),
        row("te_then_cl_zero", post("Transfer-Encoding: chunked\r\nContent-Length: 0\r\n", HELLO_CHUNKED), Status(400), Refused),
        row("cl_zero_then_te", post("Content-Length: 0\r\nTransfer-Encoding: chunked\r\n", HELLO_CHUNKED), Status(400), Refused),
        row("cl_te_to_status", b"POST /status HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", Status(400), Refused),
        row("cl_te_lowercase_names", post("content-length: 5\r\ntransfer-encoding: chunked\r\n", HELLO_CHUNKED), Status(400), Refused),
        row("cl_duplicate_equal", post("Content-Length: 5\r\nContent-Length: 5\r\n", "hello"), Status(200), Answered).body_len(5),
        row("cl_duplicate_different", post("Content-Length: 5\r\nContent-Length: 6\r\n", "hello!"), Status(400), Refused),
        row("cl_duplicate_different_case", post("Content-Length: 5\r\ncontent-length: 4\r\n", "hello"), Status(400), Refused),
        row("cl_list_equal", post("Content-Length: 5, 5\r\n", "hello"), Status(200), Answered).body_len(5),
        row("cl_list_different", post("Content-Length: 5, 6\r\n", "hello!"), Status(400), Refused),
        row("cl_list_empty_element", post("Content-Length: 5,\r\n", "hello"), Status(400), Refused),
        row("cl_plus_sign", post("Content-Length: +5\r\n", "hello"), Status(400), Refused),
        row("cl_minus_sign", post("Content-Length: -5\r\n", "hello"), Status(400), Refused),
        row("cl_space_inside", post("Content-Length: 1 2\r\n", "hello world!"), Status(400), Refused),
        row("cl_hex", post("Content-Length: 0x5\r\n", "hello"), Status(400), Refused),
        row("cl_decimal_point", post("Content-Length: 5.0\r\n", "hello"), Status(400), Refused),
        row("cl_empty", post("Content-Length:\r\n", ""), Status(400), Refused),
        row("cl_overflow_u64", post("Content-Length: 18446744073709551616\r\n", ""), Status(400), Refused),
        row("cl_u64_max_is_too_large", post("Content-Length: 18446744073709551615\r\n", ""), Status(413), Refused),
        row("cl_space_before_colon", post("Content-Length : 5\r\n", "hello"), Status(400), Refused),
        row("cl_underscore_name_is_not_cl", post("Content_Length: 5\r\n", ""), Status(200), Answered).body_len(0),
        row("te_underscore_name_is_not_te", post("Transfer_Encoding: chunked\r\nContent-Length: 5\r\n", "hello"), Status(200), Answered).body_len(5),
    ]
}

/// Transfer-Encoding variants (RFC 9112 §6.1, §7).
#[rustfmt::skip]
fn transfer_encoding_rows() -> Vec<Row> {
    let te = |value: &[u8]| post(cat(&[b"Transfer-Encoding: ", value, b"\r\n"]), HELLO_CHUNKED);
    vec![
        row("te_chunked", te(b"chunked"), Status(200), Answered).body_len(5),
        row("te_chunked_on_get", cat(&[&get("Transfer-Encoding: chunked\r\n"), HELLO_CHUNKED.as_bytes()]), Status(200), Answered).body_len(5),
        row("te_leading_whitespace", te(b" \t chunked"), Status(200), Answered).body_len(5),
        row("te_trailing_whitespace", te(b"chunked \t "), Status(200), Answered).body_len(5),
        row("te_capitalised", te(b"Chunked"), Status(200), Answered).body_len(5),
        row("te_uppercase", te(b"CHUNKED"), Status(200), Answered).body_len(5),
        row("te_trailing_empty_element", te(b"chunked ,"), Status(200), Answered).body_len(5),
        row("te_chunked_twice", te(b"chunked, chunked"), Status(400), Refused),
        row("te_chunked_twice_in_two_lines", post("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", HELLO_CHUNKED), Status(400), Refused),
        row("te_gzip_chunked", te(b"gzip, chunked"), Status(501), Refused),
        row("te_gzip_then_chunked_in_two_lines", post("Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n", HELLO_CHUNKED), Status(501), Refused),
        row("te_chunked_then_gzip_in_two_lines", post("Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n", HELLO_CHUNKED), Status(400), Refused),
        row("te_chunked_gzip", te(b"chunked, gzip"), Status(400), Refused),
        row("te_gzip_only", te(b"gzip"), Status(400), Refused),
        row("te_identity", te(b"identity"), Status(400), Refused),
        row("te_identity_chunked", te(b"identity, chunked"), Status(501), Refused),
        row("te_quoted", te(b"\"chunked\""), Status(400), Refused),
        row("te_parameter", te(b"chunked;q=1"), Status(400), Refused),
        row("te_parameter_with_space", te(b"chunked ; q=1"), Status(400), Refused),
        row("te_obs_text_before", te(b"\xa0chunked"), Status(400), Refused),
        row("te_obs_text_after", te(b"chunked\xa0"), Status(400), Refused),
        row("te_vertical_tab_after", te(b"chunked\x0b"), Status(400), Refused),
        row("te_space_inside", te(b"chun ked"), Status(400), Refused),
        row("te_prefixed_name", te(b"xchunked"), Status(400), Refused),
        row("te_empty", te(b""), Status(400), Refused),
        row("te_only_commas", te(b", ,"), Status(400), Refused),
        row("te_on_http10", b"POST /echo HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", Status(400), Refused),
        row("te_space_before_colon", post("Transfer-Encoding : chunked\r\nContent-Length: 5\r\n", "hello"), Status(400), Refused),
        row("te_hidden_by_obs_fold", post("X-A: a\r\n Transfer-Encoding: chunked\r\nContent-Length: 5\r\n", "hello"), Status(400), Refused),
    ]
}

/// Chunk sizes, extensions, line endings and trailers (RFC 9112 §7.1).
#[rustfmt::skip]
fn chunk_rows() -> Vec<Row> {
    let ext_exactly = format!("5;{}\r\nhello\r\n0\r\n\r\n", "a".repeat(MAX_CHUNK_LINE - 4));
    let ext_over = format!("5;{}\r\nhello\r\n0\r\n\r\n", "a".repeat(MAX_CHUNK_LINE - 3));
    let ext_17k = format!("5;a={}\r\nhello\r\n0\r\n\r\n", "b".repeat(17 * 1024));
    let trailer_17k = format!("0\r\nX-T: {}\r\n\r\n", "c".repeat(17 * 1024));
    vec![
        row("chunk_valid_two_chunks", chunked("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"), Status(200), Answered).body_len(11),
        row("chunk_uppercase_hex", chunked("A\r\n0123456789\r\n0\r\n\r\n"), Status(200), Answered).body_len(10),
        row("chunk_size_leading_zeros", chunked("00000000000000000005\r\nhello\r\n0\r\n\r\n"), Status(200), Answered).body_len(5),
        row("chunk_size_0x", chunked("0x5\r\nhello\r\n0\r\n\r\n"), Status(400), Refused),
        row("chunk_size_minus", chunked("-5\r\nhello\r\n0\r\n\r\n"), Status(400), Refused),
        row("chunk_size_plus", chunked("+5\r\nhello\r\n0\r\n\r\n"), Status(400), Refused),
        row("chunk_size_leading_space", chunked(" 5\r\nhello\r\n0\r\n\r\n"), Status(400), Refused),
        row("chunk_size_trailing_space", chunked("5 \r\nhello\r\n0\r\n\r\n"), Status(400), Refused),
        row("chunk_size_trailing_tab", chunked("5\t\r\nhello\r\n0\r\n\r\n"), Status(400), Refused),
        row("chunk_size_empty", chunked("\r\nhello\r\n0\r\n\r\n"), Status(400), Refused),
        row("chunk_size_not_hex", chunked("g\r\nhello\r\n0\r\n\r\n"), Status(400), Refused),
        row("chunk_size_junk_after", chunked("5x\r\nhello\r\n0\r\n\r\n"), Status(400), Refused),
        row("chunk_size_17_hex_digits", chunked("10000000000000005\r\nhello\r\n0\r\n\r\n"), Status(400), Refused),
        row("chunk_size_17_f", chunked("fffffffffffffffff\r\nhello\r\n0\r\n\r\n"), Status(400), Refused),
        row("chunk_size_u64_max_is_too_large", chunked("ffffffffffffffff\r\nhello\r\n0\r\n\r\n"), Status(413), Refused),
        row("chunk_last_chunk_000", chunked("5\r\nhello\r\n000\r\n\r\n"), Status(200), Answered).body_len(5),
        row("chunk_bare_lf_after_size", chunked("5\nhello\r\n0\r\n\r\n"), Status(400), Refused),
        row("chunk_bare_cr_after_size", chunked("5\rhello\r\n0\r\n\r\n"), Status(400), Refused),
        row("chunk_bare_lf_after_extension", chunked("5;a=b\nhello\r\n0\r\n\r\n"), Status(400), Refused),
        row("chunk_bare_cr_inside_extension", chunked("5;a\rb\r\nhello\r\n0\r\n\r\n"), Status(400), Refused),
        row("chunk_bare_lf_inside_quoted_extension", chunked("5;a=\"x\ny\"\r\nhello\r\n0\r\n\r\n"), Status(400), Refused),
        row("chunk_bare_lf_after_last_chunk", chunked("5\r\nhello\r\n0\n\r\n"), Status(400), Refused),
        row("chunk_bare_lf_ending_body", chunked("5\r\nhello\r\n0\r\n\n"), Status(400), Refused),
        row("chunk_data_no_crlf", chunked("5\r\nhelloXX0\r\n\r\n"), Status(400), Refused),
        row("chunk_data_bare_lf", chunked("5\r\nhello\n0\r\n\r\n"), Status(400), Refused),
        row("chunk_data_bare_cr", chunked("5\r\nhello\r0\r\n\r\n"), Status(400), Refused),
        row("chunk_data_longer_than_size", chunked("5\r\nhello!\r\n0\r\n\r\n"), Status(400), Refused),
        row("chunk_data_shorter_than_size", chunked("6\r\nhello\r\n0\r\n\r\n"), Status(400), Refused),
        row("chunk_ext_valid", chunked("5;name=value;flag; q = \"a \\\" b\"\r\nhello\r\n0;last\r\n\r\n"), Status(200), Answered).body_len(5),
        row("chunk_ext_bws_before_semicolon", chunked("5 ;a=b\r\nhello\r\n0\r\n\r\n"), Status(200), Answered).body_len(5),
        row("chunk_ext_no_name", chunked("5;\r\nhello\r\n0\r\n\r\n"), Status(400), Refused),
        row("chunk_ext_name_not_token", chunked("5;a@b\r\nhello\r\n0\r\n\r\n"), Status(400), Refused),
        row("chunk_ext_empty_value", chunked("5;a=\r\nhello\r\n0\r\n\r\n"), Status(400), Refused),
        row("chunk_ext_unterminated_quote", chunked("5;a=\"x\r\nhello\r\n0\r\n\r\n"), Status(400), Refused),
        row("chunk_ext_control_byte", chunked("5;a=\x01\r\nhello\r\n0\r\n\r\n"), Status(400), Refused),
        row("chunk_ext_nul_in_quotes", chunked("5;a=\"\x00\"\r\nhello\r\n0\r\n\r\n"), Status(400), Refused),
        row("chunk_line_exactly_16k", chunked(&ext_exactly), Status(200), Answered).body_len(5),
        row("chunk_line_one_over_16k", chunked(&ext_over), Status(400), Refused),
        row("chunk_ext_17k", chunked(&ext_17k), Status(400), Refused),
        row("trailers_valid", chunked("5\r\nhello\r\n0\r\nX-Trailer: t\r\nX-Other:\tu v\r\n\r\n"), Status(200), Answered).body_len(5),
        row("trailer_named_content_length_is_discarded", chunked("5\r\nhello\r\n0\r\nContent-Length: 99\r\n\r\n"), Status(200), Answered).body_len(5),
        row("trailer_obs_fold", chunked("5\r\nhello\r\n0\r\nX-T: a\r\n b\r\n\r\n"), Status(400), Refused),
        row("trailer_no_colon", chunked("5\r\nhello\r\n0\r\nX-T\r\n\r\n"), Status(400), Refused),
        row("trailer_space_before_colon", chunked("5\r\nhello\r\n0\r\nX-T : a\r\n\r\n"), Status(400), Refused),
        row("trailer_control_byte", chunked("5\r\nhello\r\n0\r\nX-T: a\x01b\r\n\r\n"), Status(400), Refused),
        row("trailer_bare_lf", chunked("5\r\nhello\r\n0\r\nX-T: a\n\r\n"), Status(400), Refused),
        row("trailer_bare_cr", chunked("5\r\nhello\r\n0\r\nX-T: a\rb\r\n\r\n"), Status(400), Refused),
        row("trailer_oversized", chunked(&trailer_17k), Status(400), Refused),
        // The follow-up is read as a trailer line ("GET /echo?follow-up HTTP/1.1"): refused.
        row("last_chunk_without_final_crlf", chunked("5\r\nhello\r\n0\r\n"), Status(400), Refused),
    ]
}

/// Header field syntax (RFC 9112 §5, RFC 9110 §5).
#[rustfmt::skip]
fn header_rows() -> Vec<Row> {
    let field = |f: &[u8]| get(cat(&[f, b"\r\n"]));
    vec![
        row("field_htab_in_value", field(b"X-A: a\tb"), Status(200), Answered).body_has("header: X-A: a\tb\n"),
        row("field_obs_text_in_value", field(b"X-A: caf\xe9 \xc3\xa9"), Status(200), Answered),
        row("field_empty_value", field(b"X-A:"), Status(200), Answered),
        row("field_no_space_after_colon", field(b"X-A:b"), Status(200), Answered).body_has("header: X-A: b\n"),
        row("field_obs_fold_space", field(b"X-A: a\r\n b"), Status(400), Refused),
        row("field_obs_fold_tab", field(b"X-A: a\r\n\tb"), Status(400), Refused),
        row("field_folded_right_after_request_line", b"GET /echo HTTP/1.1\r\n Host: t\r\n\r\n", Status(400), Refused),
        row("field_nul_in_value", field(b"X-A: a\x00b"), Status(400), Refused),
        row("field_nul_in_name", field(b"X-\x00A: b"), Status(400), Refused),
        row("field_cr_in_value", field(b"X-A: a\rb"), Status(400), Refused),
        row("field_cr_in_name", field(b"X-\rA: b"), Status(400), Refused),
        row("field_cr_at_end_of_value", field(b"X-A: a\r"), Status(400), Refused),
        row("field_bare_lf_line_end", field(b"X-A: a\nX-B: b"), Status(400), Refused),
        row("field_soh_in_value", field(b"X-A: a\x01b"), Status(400), Refused),
        row("field_us_in_value", field(b"X-A: a\x1fb"), Status(400), Refused),
        row("field_esc_in_value", field(b"X-A: \x1b[31mred"), Status(400), Refused),
        row("field_del_in_value", field(b"X-A: a\x7fb"), Status(400), Refused),
        row("field_vt_in_value", field(b"X-A: a\x0bb"), Status(400), Refused),
        row("field_ff_in_value", field(b"X-A: a\x0cb"), Status(400), Refused),
        row("field_soh_in_name", field(b"X-\x01A: b"), Status(400), Refused),
        row("field_del_in_name", field(b"X-A\x7f: b"), Status(400), Refused),
        row("field_tab_in_name", field(b"X\tA: b"), Status(400), Refused),
        row("field_name_with_space", field(b"Bad Name: x"), Status(400), Refused),
        row("field_name_parens", field(b"(x): y"), Status(400), Refused),
        row("field_name_slash", field(b"X/A: y"), Status(400), Refused),
        row("field_name_at", field(b"X@A: y"), Status(400), Refused),
        row("field_name_obs_text", field(b"X-\xc3\x84: y"), Status(400), Refused),
        row("field_name_empty", field(b": x"), Status(400), Refused),
        row("field_space_before_colon", field(b"X-A : b"), Status(400), Refused),
        row("field_tab_before_colon", field(b"X-A\t: b"), Status(400), Refused),
        row("field_no_colon", field(b"X-A b"), Status(400), Refused),
        row("field_only_name", field(b"X-A"), Status(400), Refused),
        row("field_leading_space_line_is_fold", field(b" X-A: b"), Status(400), Refused),
        row("connection_not_a_token", field(b"Connection: a b"), Status(400), Refused),
        row("connection_close", field(b"Connection: close"), Status(200), Refused),
        row("connection_keep_alive_and_close", field(b"Connection: keep-alive, close"), Status(200), Refused),
        row("upgrade_is_ignored", field(b"Connection: upgrade\r\nUpgrade: h2c"), Status(200), Answered),
    ]
}

/// The request line: method, target, version (RFC 9112 §3, §2.3).
#[rustfmt::skip]
fn request_line_rows() -> Vec<Row> {
    let pad = "a".repeat(10);
    vec![
        row("method_lowercase_is_a_token", line("get /echo HTTP/1.1"), Status(200), Answered).body_has("method: get\n"),
        row("method_extension", line("FOO-BAR /echo HTTP/1.1"), Status(200), Answered).body_has("method: FOO-BAR\n"),
        row("method_with_space", line("GE T /echo HTTP/1.1"), Status(400), Refused),
        row("method_with_nul", line(b"GE\x00T /echo HTTP/1.1"), Status(400), Refused),
        row("method_with_soh", line(b"GE\x01T /echo HTTP/1.1"), Status(400), Refused),
        row("method_with_del", line(b"GET\x7f /echo HTTP/1.1"), Status(400), Refused),
        row("method_with_paren", line("GE(T /echo HTTP/1.1"), Status(400), Refused),
        row("method_obs_text", line(b"G\xc3\x89T /echo HTTP/1.1"), Status(400), Refused),
        row("method_empty", line(" /echo HTTP/1.1"), Status(400), Refused),
        row("target_asterisk_with_get", line("GET * HTTP/1.1"), Status(400), Refused),
        row("target_authority_with_get", line("GET t:80 HTTP/1.1"), Status(400), Refused),
        row("target_origin_with_connect", line("CONNECT /echo HTTP/1.1"), Status(400), Refused),
        row("target_absolute_form", line("GET http://t/echo?x HTTP/1.1"), Status(200), Answered).body_has("target: http://t/echo?x\n"),
        row("target_absolute_form_uppercase_scheme", line("GET HTTP://T/echo HTTP/1.1"), Status(200), Answered),
        row("target_absolute_form_https", line("GET https://t:8443/echo HTTP/1.1"), Status(200), Answered),
        row("target_absolute_form_userinfo", line("GET http://u:p@t/echo HTTP/1.1"), Status(400), Refused),
        row("target_absolute_form_empty_host", line("GET http:///echo HTTP/1.1"), Status(400), Refused),
        row("target_absolute_form_ftp", line("GET ftp://t/echo HTTP/1.1"), Status(400), Refused),
        row("target_relative", line("GET echo HTTP/1.1"), Status(400), Refused),
        row("target_fragment", line("GET /echo#frag HTTP/1.1"), Status(400), Refused),
        row("target_bad_escape", line("GET /echo?%zz HTTP/1.1"), Status(400), Refused),
        row("target_truncated_escape", line("GET /echo%4 HTTP/1.1"), Status(400), Refused),
        row("target_good_escape", line("GET /echo?a=%41%2f HTTP/1.1"), Status(200), Answered),
        row("target_byte_0x80", line(b"GET /echo?\x80 HTTP/1.1"), Status(400), Refused),
        row("target_utf8", line(b"GET /caf\xc3\xa9 HTTP/1.1"), Status(400), Refused),
        row("target_byte_0xff", line(b"GET /echo\xff HTTP/1.1"), Status(400), Refused),
        row("target_nul", line(b"GET /echo\x00 HTTP/1.1"), Status(400), Refused),
        row("target_del", line(b"GET /echo\x7f HTTP/1.1"), Status(400), Refused),
        row("target_tab", line(b"GET /echo\t HTTP/1.1"), Status(400), Refused),
        row("target_with_space", line("GET /ec ho HTTP/1.1"), Status(400), Refused),
        row("target_tolerated_punctuation", line("GET /echo?q=\"<>\\^`{|} HTTP/1.1"), Status(200), Answered),
        row("version_1_0_keep_alive", b"GET /echo HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", Status(200), Answered).body_has("version: HTTP/1.0\n"),
        row("version_1_0_closes", b"GET /echo HTTP/1.0\r\n\r\n", Status(200), Refused),
        row("version_1_2", line("GET /echo HTTP/1.2"), Status(505), Refused),
        row("version_2_0", line("GET /echo HTTP/2.0"), Status(505), Refused),
        row("version_3", line("GET /echo HTTP/3"), Status(505), Refused),
        row("version_0_9_named", line("GET /echo HTTP/0.9"), Status(505), Refused),
        row("version_h2_preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", Status(505), Refused),
        row("version_lowercase", line("GET /echo http/1.1"), Status(400), Refused),
        row("version_mixed_case", line("GET /echo Http/1.1"), Status(400), Refused),
        row("version_two_digit_minor", line("GET /echo HTTP/1.10"), Status(400), Refused),
        row("version_two_digit_major", line("GET /echo HTTP/11.1"), Status(400), Refused),
        row("version_missing", line("GET /echo"), Status(400), Refused),
        row("version_trailing_junk", line("GET /echo HTTP/1.1x"), Status(400), Refused),
        row("http09_simple_request", b"GET /\r\n", Status(400), Refused),
        row("http09_simple_request_to_echo", b"GET /echo\r\n\r\n", Status(400), Refused),
        row("request_line_double_space_after_method", line("GET  /echo HTTP/1.1"), Status(400), Refused),
        row("request_line_double_space_before_version", line("GET /echo  HTTP/1.1"), Status(400), Refused),
        row("request_line_trailing_space", line("GET /echo HTTP/1.1 "), Status(400), Refused),
        row("request_line_leading_space", line(" GET /echo HTTP/1.1"), Status(400), Refused),
        row("request_line_tabs", line("GET\t/echo\tHTTP/1.1"), Status(400), Refused),
        row("request_line_bare_cr", line("GET /echo\rHTTP/1.1"), Status(400), Refused),
        row("request_line_bare_lf", b"GET /echo HTTP/1.1\nHost: t\r\n\r\n", Status(400), Refused),
        row("all_bare_lf", b"GET /echo HTTP/1.1\nHost: t\n\n", Status(400), Refused),
        row("four_empty_lines_first", cat(&[b"\r\n\r\n\r\n\r\n", &line("GET /echo HTTP/1.1")]), Status(200), Answered),
        row("five_empty_lines_first", cat(&[b"\r\n\r\n\r\n\r\n\r\n", &line("GET /echo HTTP/1.1")]), Status(400), Refused),
        row("bare_lf_empty_line_first", cat(&[b"\n", &line("GET /echo HTTP/1.1")]), Status(400), Refused),
        row("long_but_fine_target", line(format!("GET /echo?{pad} HTTP/1.1")), Status(200), Answered),
    ]
}

/// Host (RFC 9112 §3.2, RFC 3986 §3.2.2–§3.2.3).
#[rustfmt::skip]
fn host_rows() -> Vec<Row> {
    vec![
        row("host_missing_on_11", get_bare(""), Status(400), Refused),
        row("host_missing_on_10", b"GET /echo HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", Status(200), Answered),
        row("host_duplicate", get("Host: u\r\n"), Status(400), Refused),
        row("host_duplicate_equal", get("Host: t\r\n"), Status(400), Refused),
        row("host_duplicate_other_case", get("host: t\r\n"), Status(400), Refused),
        row("host_duplicate_on_10", b"GET /echo HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", Status(400), Refused),
        row("host_empty_with_origin_form", host(""), Status(200), Answered),
        row("host_name_port", host("example.test:8080"), Status(200), Answered),
        row("host_ipv4", host("127.0.0.1"), Status(200), Answered),
        row("host_underscore", host("a_b.test"), Status(200), Answered),
        row("host_ipv6", host("[::1]:8080"), Status(200), Answered),
        row("host_ipv6_full", host("[2001:db8::1]"), Status(200), Answered),
        row("host_ipv6_bad_digit", host("[::g]"), Status(400), Refused),
        row("host_ipv6_unclosed", host("[::1"), Status(400), Refused),
        row("host_ipv6_unbracketed", host("::1"), Status(400), Refused),
        row("host_ipv6_zone", host("[fe80::1%25eth0]"), Status(400), Refused),
        row("host_ipvfuture", host("[v1.x]"), Status(400), Refused),
        row("host_space_inside", host("a b"), Status(400), Refused),
        row("host_slash", host("t/x"), Status(400), Refused),
        row("host_userinfo", host("u@t"), Status(400), Refused),
        row("host_quote", host("t\"x"), Status(400), Refused),
        row("host_control_byte", host(b"t\x01"), Status(400), Refused),
        row("host_obs_text", host(b"caf\xc3\xa9"), Status(400), Refused),
        row("host_list_of_two", host("a, b"), Status(400), Refused),
        row("host_port_empty", host("t:"), Status(200), Answered),
        row("host_port_65535", host("t:65535"), Status(200), Answered),
        row("host_port_65536", host("t:65536"), Status(400), Refused),
        row("host_port_alpha", host("t:http"), Status(400), Refused),
        row("host_port_sign", host("t:+80"), Status(400), Refused),
        row("host_port_twice", host("t:80:80"), Status(400), Refused),
        row("host_only_port", host(":80"), Status(400), Refused),
        row("absolute_form_wins_over_host", b"GET http://a/echo HTTP/1.1\r\nHost: b\r\n\r\n", Status(200), Answered),
        row("absolute_form_without_host_on_11", b"GET http://t/echo HTTP/1.1\r\n\r\n", Status(400), Refused),
    ]
}

/// 414, 431 and 413, each at the limit and one past it.
#[rustfmt::skip]
fn limit_rows() -> Vec<Row> {
    let base = get("X-Pad: \r\n").len();
    let pad_exact = get(format!("X-Pad: {}\r\n", "p".repeat(MAX_HEAD - base)));
    let pad_over = get(format!("X-Pad: {}\r\n", "p".repeat(MAX_HEAD - base + 1)));
    let fields = |n: usize| (1..n).map(|i| format!("X-{i}: {i}\r\n")).collect::<String>();
    let long_line = line(format!("GET /echo?{} HTTP/1.1", "q".repeat(MAX_HEAD)));
    let body_exact = post(format!("Content-Length: {MAX_BODY}\r\n"), "b".repeat(MAX_BODY));
    let chunked_exact = chunked(format!("{MAX_BODY:x}\r\n{}\r\n0\r\n\r\n", "b".repeat(MAX_BODY)));
    let half = MAX_BODY / 2;
    let chunked_over_in_two = chunked(format!(
        "{half:x}\r\n{}\r\n{:x}\r\n",
        "b".repeat(half),
        half + 1
    ));
    vec![
        row("head_exactly_max_head_bytes", pad_exact, Status(200), Answered),
        row("head_one_over_is_431", pad_over, Status(431), Refused),
        row("request_line_over_max_is_414", long_line, Status(414), Refused),
        row("fields_at_max_headers", get(fields(MAX_HEADERS)), Status(200), Answered),
        row("fields_one_over_is_431", get(fields(MAX_HEADERS + 1)), Status(431), Refused),
        row("cl_at_max_body", body_exact, Status(200), Answered).body_len(MAX_BODY),
        row("cl_one_over_is_413", post(format!("Content-Length: {}\r\n", MAX_BODY + 1), ""), Status(413), Refused),
        row("chunked_at_max_body", chunked_exact, Status(200), Answered).body_len(MAX_BODY),
        row("chunk_one_over_is_413", chunked(format!("{:x}\r\n", MAX_BODY + 1)), Status(413), Refused),
        row("chunks_summing_over_is_413", chunked_over_in_two, Status(413), Refused),
    ]
}

/// A valid request after an error is never answered; Expect (RFC 9110 §10.1.1).
#[rustfmt::skip]
fn pipelining_and_expect_rows() -> Vec<Row> {
    let smuggled = b"GET /echo?smuggled HTTP/1.1\r\nHost: t\r\n\r\n";
    vec![
        row("valid_request_after_400", cat(&[&get_bare(""), smuggled]), Status(400), Refused),
        row("valid_request_after_501", cat(&[&post("Transfer-Encoding: gzip, chunked\r\n", HELLO_CHUNKED), smuggled]), Status(501), Refused),
        row("valid_request_after_505", cat(&[&line("GET /echo HTTP/2.0"), smuggled]), Status(505), Refused),
        row("valid_request_after_bad_chunk", cat(&[&chunked("5\r\nhelloXX"), smuggled]), Status(400), Refused),
        // Clients that end a body with an extra CRLF: skipped before the next request line.
        row("crlf_after_body_before_next_request", post("Content-Length: 5\r\n", "hello\r\n"), Status(200), Answered).body_len(5),
        row("request_in_cl_body_is_body", post("Content-Length: 40\r\n", smuggled), Status(200), Answered).body_len(40),
        row("expect_100_continue", post("Content-Length: 5\r\nExpect: 100-continue\r\n", "hello"), Status(200), Answered).body_len(5),
        row("expect_100_continue_other_case", post("Content-Length: 5\r\nExpect: 100-Continue\r\n", "hello"), Status(200), Answered).body_len(5),
        row("expect_100_continue_chunked", post("Transfer-Encoding: chunked\r\nExpect: 100-continue\r\n", HELLO_CHUNKED), Status(200), Answered).body_len(5),
        row("expect_100_continue_without_body", get("Expect: 100-continue\r\n"), Status(200), Answered),
        // The client did not wait for 100: the body is whole, so the connection is reused.
        row("expect_100_continue_unread_body_already_sent", b"POST /status HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\nhello", Status(200), Answered),
        row("expect_200_ok", post("Content-Length: 5\r\nExpect: 200-ok\r\n", "hello"), Status(417), Refused),
        row("expect_with_parameter", post("Content-Length: 5\r\nExpect: 100-continue;a=b\r\n", "hello"), Status(417), Refused),
        row("expect_empty_is_none", post("Content-Length: 5\r\nExpect:\r\n", "hello"), Status(200), Answered).body_len(5),
        row("expect_on_10_is_ignored", b"POST /echo HTTP/1.0\r\nConnection: keep-alive\r\nExpect: 200-ok\r\nContent-Length: 5\r\n\r\nhello", Status(200), Answered).body_len(5),
    ]
}

/// Rows written in parts, and rows that end with the client's EOF.
#[rustfmt::skip]
fn split_and_eof_rows() -> Vec<Row> {
    vec![
        split("split_head_at_every_crlf", &[b"GET /echo HTTP/1.1\r", b"\nHost: t\r", b"\n\r", b"\n"], Status(200), Answered),
        split("split_te_value", &[b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chun", b"ked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"], Status(200), Answered).body_len(5),
        split("split_chunk_line", &[&chunked("5"), b";a=b\r", b"\nhel", b"lo\r", b"\n0\r\n", b"\r\n"], Status(200), Answered).body_len(5),
        split("split_cl_body", &[&post("Content-Length: 5\r\n", "he"), b"llo"], Status(200), Answered).body_len(5),
        split("split_cl_then_te", &[b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n", b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"], Status(400), Refused),
        split("split_obs_fold", &[b"GET /echo HTTP/1.1\r\nHost: t\r\nX-A: a\r\n", b" b\r\n\r\n"], Status(400), Refused),
        split("split_bare_cr_at_piece_end", &[b"GET /echo HTTP/1.1\r\nHost: t\r", b"X-A: b\r\n\r\n"], Status(400), Refused),
        split("split_chunk_data_crlf", &[&chunked("5\r\nhel"), b"lo\r", b"X0\r\n\r\n"], Status(400), Refused),
        split("split_bad_request_then_valid", &[&get_bare(""), b"GET /echo?smuggled HTTP/1.1\r\n", b"Host: t\r\n\r\n"], Status(400), Refused),
        eof("eof_before_anything", &[], Closed),
        eof("eof_in_request_line", &[b"GET /ec"], Closed),
        eof("eof_in_fields", &[b"GET /echo HTTP/1.1\r\nHost: t\r\n"], Closed),
        eof("eof_in_cl_body", &[&post("Content-Length: 10\r\n", "hello")], Closed),
        eof("eof_in_chunked_body", &[&chunked("5\r\nhello\r\n")], Closed),
        eof("eof_in_chunk_line", &[&chunked("5;a=")], Closed),
    ]
}

// ---- the runner ----

/// What one row did, or why it failed (with what came back).
fn run(srv: &Server, row: &Row) -> Result<(), String> {
    let mut c = srv.connect();
    let last = row.pieces.len().saturating_sub(1);
    for (i, piece) in row.pieces.iter().enumerate() {
        let mut bytes = piece.clone();
        if i == last && !row.eof {
            bytes.extend_from_slice(FOLLOW_UP);
        }
        // The server may have answered and closed already; what it does is checked below.
        if !c.try_send(&bytes) || c.stream.flush().is_err() {
            break;
        }
    }
    if row.eof {
        c.shutdown_write();
    }
    let first = final_response(&mut c);
    let got = first.as_ref().map_or(Closed, |r| Status(r.status));
    if got != row.expect {
        return Err(format!(
            "expected {:?}, got {}",
            row.expect,
            describe(&first)
        ));
    }
    if let (Some(text), Some(r)) = (&row.body_has, &first) {
        if !r.text().contains(text.as_str()) {
            return Err(format!("body lacks {text:?}: {}", describe(&first)));
        }
    }
    match row.next {
        Refused => {
            let rest = c.read_to_close();
            if !rest.is_empty() {
                return Err(format!(
                    "the follow-up was answered: {:?}",
                    String::from_utf8_lossy(&rest)
                ));
            }
        }
        Answered => {
            let next = final_response(&mut c);
            let ok = next
                .as_ref()
                .is_some_and(|r| r.status == 200 && r.text().contains("target: /echo?follow-up\n"));
            if !ok {
                return Err(format!("follow-up not answered: {}", describe(&next)));
            }
        }
    }
    Ok(())
}

/// The next final response, skipping interim ones (`100 Continue`); None on a close.
fn final_response(c: &mut Client) -> Option<Response> {
    loop {
        let r = c.try_response(false)?;
        if r.status >= 200 {
            return Some(r);
        }
    }
}

fn describe(r: &Option<Response>) -> String {
    r.as_ref().map_or_else(
        || "the connection closed with no response".to_string(),
        Response::describe,
    )
}

#[test]
fn bad_requests_table() {
    let rows = rows();
    assert!(rows.len() >= 120, "{} rows", rows.len());
    let mut names: Vec<&str> = rows.iter().map(|r| r.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), rows.len(), "row names are unique");

    let srv = server(KEYS);
    let mut failures = Vec::new();
    for row in &rows {
        let result = catch_unwind(AssertUnwindSafe(|| run(&srv, row)))
            .unwrap_or_else(|payload| Err(format!("panicked: {}", panic_text(&*payload))));
        if let Err(why) = result {
            failures.push(format!("{}: {why}", row.name));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} rows failed:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
}
