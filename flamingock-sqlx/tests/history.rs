//! History queries against every backend compiled in: each filter, both orders and keyset paging
//! return exactly the rows the reference semantics ([`HistoryQuery::apply_to`] over the whole
//! log) select, and a hostile filter value is only ever a value.

mod common;

/// The history check on one backend (stamped per backend compiled in by
/// `flamingock_testkit::for_each_backend!`, behind its cargo feature).
macro_rules! history_suite {
    ($name:ident, $db:ty, $backend:expr) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn history_filters_orders_and_pages() {
                super::checks::history_filters_orders_and_pages($backend).await;
            }
        }
    };
}

flamingock_testkit::for_each_backend!(history_suite, features);

#[allow(dead_code)] // with no backend feature, no check is instantiated
mod checks {
    use flamingock_core::history::HistoryQuery;
    use flamingock_core::{AuditEntry, AuditState, TxStrategy};

    use crate::common::{Backend, TestDb, entry};

    fn ids(rows: &[AuditEntry]) -> Vec<i64> {
        rows.iter().map(|r| r.id).collect()
    }

    pub async fn history_filters_orders_and_pages(backend: Backend) {
        let Some(db) = TestDb::new(backend).await else {
            return;
        };
        let store = db.initialized_store().await;
        let rows = [
            ("a", "ana", AuditState::Started, "run-1", "schema"),
            ("a", "ana", AuditState::Applied, "run-1", "schema"),
            ("b", "bo", AuditState::Started, "run-1", "data"),
            ("b", "bo", AuditState::Failed, "run-1", "data"),
            (
                "b",
                "cy",
                AuditState::ManualMarkedAsApplied,
                "run-2",
                "data",
            ),
            ("c", "bo", AuditState::Applied, "run-2", "data"),
            ("a", "ana", AuditState::RolledBack, "run-3", "schema"),
        ];
        for (change_id, author, state, run, stage) in rows {
            let mut row = entry(change_id, state, TxStrategy::NonTransactional);
            row.author = author.into();
            row.execution_id = run.into();
            row.stage = stage.into();
            store.append(&row, None).await.expect("append");
            // Distinct database timestamps, so that time ranges can split the log.
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        let all = store.entries().await.expect("entries");
        assert_eq!(all.len(), rows.len());
        let at = |i: usize| all[i].created_at.expect("a stored row has its time");

        let queries = vec![
            HistoryQuery::new(),
            HistoryQuery::new().author("bo"),
            HistoryQuery::new().change("a").newest_first(),
            HistoryQuery::new()
                .state(AuditState::Applied)
                .state(AuditState::ManualMarkedAsApplied),
            HistoryQuery::new().stage("data").execution("run-1"),
            HistoryQuery::new().since(at(2)).until(at(5)),
            HistoryQuery::new().since(at(4)).author("bo"),
            HistoryQuery::new().latest_per_unit(),
            HistoryQuery::new()
                .latest_per_unit()
                .state(AuditState::Applied),
            HistoryQuery::new().limit(3),
            HistoryQuery::new().after(all[2].id).limit(2),
            HistoryQuery::new().newest_first().after(all[5].id).limit(2),
            HistoryQuery::new().author("nobody"),
            HistoryQuery::new().change("a' OR '1'='1"),
        ];
        for query in &queries {
            let got = store.history(query).await.expect("history query");
            assert_eq!(
                ids(&got),
                ids(&query.apply_to(&all)),
                "{backend:?} {query:?}"
            );
        }
        // The reference semantics themselves, spelled out for three of them.
        let by_author = store
            .history(&HistoryQuery::new().author("bo"))
            .await
            .expect("history");
        assert_eq!(ids(&by_author), [all[2].id, all[3].id, all[5].id]);
        let range = store
            .history(&HistoryQuery::new().since(at(2)).until(at(5)))
            .await
            .expect("history");
        assert_eq!(ids(&range), [all[2].id, all[3].id, all[4].id]);
        let current = store
            .history(&HistoryQuery::new().latest_per_unit())
            .await
            .expect("history");
        assert_eq!(ids(&current), [all[4].id, all[5].id, all[6].id]);
        assert_eq!(range[0], all[2], "rows round-trip whole");
        db.cleanup(store.as_ref()).await;
    }
}
