//! How long the stats service takes to load its CSV and to compute each of its nine statistics.
//!
//! The service promises "well under a millisecond" per statistic because the loader pre-groups
//! the table; these numbers check that promise and let the README quote it. Each statistic is
//! measured on the largest question (obesity: every state, about 1,400 category groups) and,
//! for the per-state endpoints, on Ohio. Each iteration checks the answer's length against a
//! first run, so that a statistic that broke and returned nothing could not look fast.
//!
//! Run: `cargo bench -p flash-benchmarks --bench stats`.

use std::hint::black_box;
use std::path::Path;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use flash_stats::{Endpoint, Request, Table, BUNDLED_CSV};

fn load(c: &mut Criterion) {
    let bytes = std::fs::metadata(BUNDLED_CSV).expect("bundled CSV").len();
    let mut group = c.benchmark_group("stats_load");
    group.throughput(Throughput::Bytes(bytes));
    // A load takes milliseconds; fewer samples keep the run short without losing precision.
    group.sample_size(20);
    group.bench_function("bundled_csv", |b| {
        b.iter(|| {
            let table = Table::load(Path::new(BUNDLED_CSV)).expect("load");
            assert_eq!(table.rows(), 18_650);
            table
        })
    });
    group.finish();
}

fn statistics(c: &mut Criterion) {
    let table = Table::load(Path::new(BUNDLED_CSV)).expect("load");
    let mut group = c.benchmark_group("stats_answer");
    for endpoint in Endpoint::ALL {
        let request = Request { endpoint, question: 0, state: endpoint.needs_state().then(|| "Ohio".to_string()) };
        let query = table.resolve(&request).expect("a valid query");
        let expected_len = table.answer(&query).len();
        assert!(expected_len > 2, "{}: empty answer", endpoint.name());
        group.throughput(Throughput::Bytes(expected_len as u64));
        group.bench_function(BenchmarkId::from_parameter(endpoint.name()), |b| {
            b.iter(|| {
                let answer = table.answer(black_box(&query));
                assert_eq!(answer.len(), expected_len);
                answer
            })
        });
    }
    group.finish();
}

criterion_group!(benches, load, statistics);
criterion_main!(benches);
