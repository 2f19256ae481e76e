// Package openctistandin is a test stand-in for the OpenCTI platform, not product:
// it honours the parts of OpenCTI's contract that socflow's orchestrator depends on
// (environment variables, dependency checks against the real Redis, RabbitMQ,
// OpenSearch and S3, the init lock, first-boot versus migration, refusal of
// downgrades, the health endpoint and a slice of the GraphQL API), so that the
// orchestrator is tested on that behaviour on machines where OpenCTI cannot run.
//
// A version change runs the migrations of OpenCTI's migration.js one by one
// (migration.go): each recorded as it completes (lastRun, a MigrationReference),
// none rolled back when one fails (Config.FailMigration), the rest resumed by the
// next start once the init lock has expired. From 7.x, API tokens are HMACs under
// APP__ENCRYPTION_KEY and User has api_tokens instead of api_token (tokens.go).
//
// The GraphQL slice (schema.graphql) covers what pycti 6.9.28 sends for a
// connector built on OpenCTIConnectorHelper — the health check, registerConnector
// (returning the RabbitMQ and S3 connection and the queue names), pingConnector,
// connector, workAdd and workEdit — and what socflow needs to manage connector
// accounts: users and groups (built-ins Administrators, Connectors, Default),
// userAdd, userEdit (fieldPatch, relationAdd, relationDelete, tokenRenew,
// delete), connectors and deleteConnector. Users, groups, connectors and works
// are internal objects in the search engine, so they survive restarts as the
// real platform's do; registration declares the connector's listen_<id> and
// push_<id> queues in the real RabbitMQ as OpenCTI does. Errors carry OpenCTI's
// names, messages and data (AUTH_REQUIRED, FORBIDDEN_ACCESS, FUNCTIONAL_ERROR
// "User already exists", MISSING_REFERENCE_ERROR for an unknown group,
// ALREADY_DELETED_ERROR for an unknown connector, WORK_NOT_ALIVE).
package openctistandin
