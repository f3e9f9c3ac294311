import GRDB

// MARK: - Migrations

extension JobStore {
    /// The store's migrations, by name, in order. Append-only: a shipped migration is never
    /// edited; schema changes are new migrations ("v2", …).
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()

        migrator.registerMigration("v1") { db in
            // Times are REAL seconds since 1970 (exact round trip; `datetime(x, 'unixepoch')`
            // shows them in the sqlite3 shell).
            try db.create(table: "jobs") { t in
                t.autoIncrementedPrimaryKey("id")  // ids never reused: FIFO order is id order
                t.column("name", .text).notNull().indexed()
                t.column("config_json", .text).notNull()
                t.column("state", .text).notNull()
                    .check(sql: "state IN ('queued','running','succeeded','failed','cancelled')")
                t.column("priority", .integer).notNull().defaults(to: 0)
                t.column("attempt", .integer).notNull().defaults(to: 1)
                t.column("max_attempts", .integer).notNull().defaults(to: 3)
                    .check(sql: "max_attempts >= 1")
                t.column("lease_owner", .text)
                t.column("lease_token", .text)
                t.column("lease_expires_at", .double)
                t.column("lease_seconds", .double)
                t.column("images_done", .integer).notNull().defaults(to: 0)
                t.column("images_total", .integer)
                t.column("step", .integer).notNull().defaults(to: 0)
                t.column("steps_total", .integer)
                t.column("resumed_from_step", .integer).notNull().defaults(to: 0)
                t.column("latest_checkpoint_id", .integer)
                    .references("checkpoints", column: "id", onDelete: .setNull, deferred: true)
                t.column("model_sha256", .text)
                t.column("model_size", .integer)
                t.column("failure_reason", .text)
                t.column("created_at", .double).notNull()
                t.column("updated_at", .double).notNull()
                t.column("started_at", .double)
                t.column("finished_at", .double)
                t.column("images_per_s", .double)
            }
            // The lease query: next queued job by priority, then id.
            try db.create(index: "jobs_on_state_priority_id", on: "jobs",
                          columns: ["state", "priority", "id"])

            try db.create(table: "checkpoints") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("job_id", .integer).notNull()
                    .references("jobs", column: "id", onDelete: .cascade)
                t.column("step", .integer).notNull()
                t.column("images_seen", .integer).notNull()
                t.column("sha256", .text).notNull()
                t.column("size", .integer).notNull()
                t.column("path", .text).notNull()
                t.column("created_at", .double).notNull()
                t.uniqueKey(["job_id", "step"])
            }

            try db.create(table: "loss_points") { t in
                t.column("job_id", .integer).notNull()
                    .references("jobs", column: "id", onDelete: .cascade)
                t.column("step", .integer).notNull()
                t.column("images", .integer).notNull()
                t.column("content", .double).notNull()
                t.column("style", .double).notNull()
                t.column("total", .double).notNull()
                t.primaryKey(["job_id", "step"])
            }

            try db.create(table: "workers") { t in
                t.primaryKey("name", .text)
                t.column("host", .text).notNull()
                t.column("threads", .integer).notNull()
                t.column("last_seen", .double).notNull()
                t.column("current_job_id", .integer)
                    .references("jobs", column: "id", onDelete: .setNull)
            }

            try db.create(table: "events") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("job_id", .integer).indexed()
                    .references("jobs", column: "id", onDelete: .cascade)
                t.column("at", .double).notNull()
                t.column("kind", .text).notNull()
                t.column("from_state", .text)
                t.column("to_state", .text)
                t.column("reason", .text)
                t.column("worker", .text)
            }
        }

        // Later migrations are appended here, never inserted above.

        migrator.registerMigration("v2") { db in
            // The latest preview of each job: a PNG in the coordinator's artifact store, rendered
            // by the worker through a checkpoint, and the step it shows (the dashboard's picture).
            try db.alter(table: "jobs") { t in
                t.add(column: "preview_sha256", .text)
                t.add(column: "preview_step", .integer)
            }
        }

        migrator.registerMigration("v3") { db in
            // Scoped credentials: worker tokens made by the admin, kept only as SHA-256 digests;
            // and which credential holds each job's lease (what a worker token may touch).
            try db.create(table: "credentials") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("name", .text).notNull()
                t.column("role", .text).notNull().check(sql: "role IN ('worker')")
                t.column("token_sha256", .text).notNull().unique()
                t.column("created_at", .double).notNull()
                t.column("last_used_at", .double)
                t.column("revoked_at", .double)
            }
            try db.alter(table: "jobs") { t in
                t.add(column: "lease_credential_id", .integer)
            }
        }

        migrator.registerMigration("v4") { db in
            // Artifacts the coordinator itself serves (the loss network's weights), kept by the
            // garbage collector although no job row names them.
            try db.create(table: "pinned_artifacts") { t in
                t.primaryKey("sha256", .text)
                t.column("what", .text).notNull()
                t.column("pinned_at", .double).notNull()
            }
        }

        migrator.registerMigration("v5") { db in
            // Datasets the coordinator serves (`serve --dataset NAME=DIR`): every registered
            // version of each, named by its manifest's digest, with the shards the manifest
            // lists; `served_position` marks the versions served now (0: the default dataset),
            // NULL an older version, kept while a job that can still train pins it. And the
            // loss network each job's latest attempt reported.
            try db.create(table: "dataset_versions") { t in
                t.primaryKey("sha256", .text)
                t.column("name", .text).notNull()
                t.column("size", .integer).notNull()
                t.column("files", .integer).notNull()
                t.column("excluded", .integer).notNull()
                t.column("bytes", .integer).notNull()
                t.column("shards", .integer).notNull()
                t.column("registered_at", .double).notNull()
                t.column("served_position", .integer)
            }
            // At most one current version per name, and one per position.
            try db.execute(sql: """
                CREATE UNIQUE INDEX dataset_versions_current_name ON dataset_versions(name)
                    WHERE served_position IS NOT NULL;
                CREATE UNIQUE INDEX dataset_versions_current_position ON dataset_versions(served_position)
                    WHERE served_position IS NOT NULL;
                """)
            try db.create(table: "dataset_shards") { t in
                t.column("dataset_sha256", .text).notNull()
                    .references("dataset_versions", column: "sha256", onDelete: .cascade)
                t.column("position", .integer).notNull()
                t.column("sha256", .text).notNull().indexed()
                t.column("size", .integer).notNull()
                t.primaryKey(["dataset_sha256", "position"])
            }
            try db.alter(table: "jobs") { t in
                t.add(column: "loss_network", .text)
            }
        }

        migrator.registerMigration("v6") { db in
            // Validation (issue 14): the held-out losses at each checkpoint and at the end,
            // unweighted and weighted, one row per step; and why a succeeded job stopped early.
            try db.create(table: "validation_points") { t in
                t.column("job_id", .integer).notNull()
                    .references("jobs", column: "id", onDelete: .cascade)
                t.column("step", .integer).notNull()
                t.column("content", .double).notNull()
                t.column("style", .double).notNull()
                t.column("content_weighted", .double).notNull()
                t.column("style_weighted", .double).notNull()
                t.primaryKey(["job_id", "step"])
            }
            try db.alter(table: "jobs") { t in
                t.add(column: "stop_reason", .text)
            }
        }

        migrator.registerMigration("v7") { db in
            // Issue 14: the style weight a worker chose for `"style_weight": "auto"`, and the
            // job a warm start (`"init"`) began from.
            try db.alter(table: "jobs") { t in
                t.add(column: "chosen_style_weight", .double)
                t.add(column: "warm_start_job_id", .integer)
                t.add(column: "warm_start", .text)
            }
        }

        return migrator
    }
}
