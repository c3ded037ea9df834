//! PostgreSQL: a member in recovery is a replica; the primary lists its streaming replicas.

use tokio_postgres::{Client, NoTls};

use crate::{ProbeError, Role, Target, within};

/// One row of the primary's `pg_stat_replication`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaState {
    pub application_name: String,
    /// `streaming`, `catchup`, `startup`, …
    pub state: String,
}

/// A connection to database `postgres` as `user`, within the target's timeout.
pub async fn connect(t: &Target, user: &str) -> Result<Client, ProbeError> {
    let mut cfg = tokio_postgres::Config::new();
    cfg.host(&t.host).port(t.port).user(user).dbname("postgres").connect_timeout(t.timeout);
    if let Some(p) = &t.password {
        cfg.password(p);
    }
    let (client, conn) = cfg.connect(NoTls).await.map_err(|e| ProbeError::failed(t, e))?;
    tokio::spawn(async move {
        // The connection ends when the client is dropped; its error then says nothing new.
        let _ = conn.await;
    });
    Ok(client)
}

/// `primary` or `replica`, from `pg_is_in_recovery()`.
pub async fn role(t: &Target, user: &str) -> Result<Role, ProbeError> {
    within(t, async {
        let c = connect(t, user).await?;
        let row = c.query_one("SELECT pg_is_in_recovery()", &[]).await.map_err(|e| ProbeError::failed(t, e))?;
        let in_recovery: bool = row.get(0);
        Ok(if in_recovery { Role::Replica } else { Role::Primary })
    })
    .await
}

/// The replicas connected to a primary, from `pg_stat_replication`.
pub async fn replicas(t: &Target, user: &str) -> Result<Vec<ReplicaState>, ProbeError> {
    within(t, async {
        let c = connect(t, user).await?;
        let rows =
            c.query("SELECT application_name, state FROM pg_stat_replication ORDER BY application_name", &[]).await.map_err(|e| ProbeError::failed(t, e))?;
        Ok(rows
            .iter()
            .map(|r| ReplicaState {
                application_name: r.get::<_, Option<String>>(0).unwrap_or_default(),
                state: r.get::<_, Option<String>>(1).unwrap_or_default(),
            })
            .collect())
    })
    .await
}

/// Which of `expected` (application names = member names) are not streaming from the primary.
pub fn not_streaming(rows: &[ReplicaState], expected: &[String]) -> Vec<String> {
    expected.iter().filter(|m| !rows.iter().any(|r| &r.application_name == *m && r.state == "streaming")).cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replica_counts_only_when_streaming() {
        let rows = vec![
            ReplicaState { application_name: "pg-1".into(), state: "streaming".into() },
            ReplicaState { application_name: "pg-2".into(), state: "catchup".into() },
        ];
        let expected = vec!["pg-1".to_string(), "pg-2".to_string(), "pg-3".to_string()];
        assert_eq!(not_streaming(&rows, &expected), vec!["pg-2".to_string(), "pg-3".to_string()]);
    }
}
