// Package openctistandin is a test stand-in for the OpenCTI platform, not product:
// it honours the parts of OpenCTI's contract that socflow's orchestrator depends on
// (environment variables, dependency checks against the real Redis, RabbitMQ,
// OpenSearch and S3, the init lock, first-boot versus migration, refusal of
// downgrades, the health endpoint and a slice of the GraphQL API), so that the
// orchestrator is tested on that behaviour on machines where OpenCTI cannot run.
//
// The GraphQL schema and resolvers are split so later work (users, groups,
// connectors) adds types and resolver methods instead of replacing them.
package openctistandin
