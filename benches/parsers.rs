//! Micro-benchmarks of the sans-IO cores: request head parsing, chunked decoding and
//! encoding, and the CGI header-block parser. `cargo bench`; CI runs `cargo bench --no-run`.

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

use cgigate::parsers::cgi_header as header;
use cgigate::parsers::decode::{Decoder, Step};
use cgigate::parsers::encode_chunk;
use cgigate::parsers::head::{self, Limits};

const CURL_GET: &[u8] = b"GET /cgi-bin/hello?x=1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n";
const BROWSER_GET: &[u8] = b"GET /static/index.html HTTP/1.1\r\nHost: example.test\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36\r\n\
Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8\r\n\
Accept-Language: en-US,en;q=0.9\r\nAccept-Encoding: gzip, deflate, br\r\nConnection: keep-alive\r\n\
Cookie: session=0123456789abcdef; theme=dark; tz=UTC\r\nUpgrade-Insecure-Requests: 1\r\n\
Sec-Fetch-Dest: document\r\nSec-Fetch-Mode: navigate\r\nSec-Fetch-Site: none\r\n\r\n";

fn head_parsing(c: &mut Criterion) {
    let limits = Limits::default();
    let mut group = c.benchmark_group("head");
    for (name, raw) in [("curl_get", CURL_GET), ("browser_get", BROWSER_GET)] {
        group.throughput(Throughput::Bytes(raw.len() as u64));
        group.bench_function(name, |b| {
            b.iter_batched(
                || BytesMut::from(raw),
                |mut buf| head::parse(&mut buf, &limits),
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

fn chunked_body(pieces: usize, size: usize) -> Vec<u8> {
    let mut out = BytesMut::new();
    for _ in 0..pieces {
        encode_chunk(&mut out, &vec![b'x'; size]);
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out.to_vec()
}

fn chunked(c: &mut Criterion) {
    let mut group = c.benchmark_group("chunked");
    for (name, pieces, size) in [("decode_64x1k", 64, 1024), ("decode_4x64k", 4, 64 * 1024)] {
        let body = chunked_body(pieces, size);
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_function(name, |b| {
            b.iter_batched(
                || BytesMut::from(&body[..]),
                |mut buf| {
                    let mut d = Decoder::chunked();
                    let mut total = 0;
                    while let Ok(Step::Data(data)) = d.decode(&mut buf) {
                        total += data.len();
                    }
                    total
                },
                BatchSize::SmallInput,
            )
        });
    }
    let piece = Bytes::from(vec![b'y'; 4096]);
    group.throughput(Throughput::Bytes(64 * 4096));
    group.bench_function("encode_64x4k", |b| {
        b.iter(|| {
            let mut out = BytesMut::with_capacity(64 * 4200);
            for _ in 0..64 {
                encode_chunk(&mut out, &piece);
            }
            out
        })
    });
    group.finish();
}

fn cgi_header(c: &mut Criterion) {
    let blocks: [(&str, &[u8]); 2] = [
        ("minimal", b"Content-Type: text/plain\r\n\r\nHello\n"),
        (
            "typical",
            b"Status: 200 OK\nContent-Type: text/html; charset=utf-8\nCache-Control: no-store\n\
Set-Cookie: a=1; Path=/; HttpOnly\nSet-Cookie: b=2; Path=/\nX-Powered-By: PHP/8.2\n\
Content-Length: 5\n\nhello",
        ),
    ];
    let mut group = c.benchmark_group("cgi_header");
    for (name, block) in blocks {
        group.throughput(Throughput::Bytes(block.len() as u64));
        group.bench_function(name, |b| b.iter(|| header::parse(block, 64 * 1024)));
    }
    group.finish();
}

criterion_group!(benches, head_parsing, chunked, cgi_header);
criterion_main!(benches);
