// The slice of Wiz's GraphQL schema a service-account rotator touches, in Wiz's own names, so the queries the
// public tools send (fragments on ServiceAccount, integration and assignedProjects included) validate unchanged.
// Types and fields the sandbox has no state for (integration, assignedProjects) resolve to null.
import { buildSchema, type GraphQLSchema } from 'graphql';
import { SERVICE_ACCOUNT_TYPES } from './tenant.js';

export const WIZ_SCHEMA_SDL = /* GraphQL */ `
  scalar DateTime

  enum ServiceAccountType {
    ${SERVICE_ACCOUNT_TYPES.join('\n    ')}
  }

  "MODERN accounts use client credentials against the Cognito auth hosts; every sandbox account is MODERN."
  enum ServiceAccountSource {
    MODERN
    LEGACY
  }

  enum ServiceAccountOrderField {
    CREATED_AT
    NAME
  }

  enum OrderDirection {
    ASC
    DESC
  }

  input ServiceAccountOrder {
    field: ServiceAccountOrderField!
    direction: OrderDirection!
  }

  input DateFilter {
    after: DateTime
    before: DateTime
  }

  input ServiceAccountFilters {
    "Matches a name (case-insensitive substring) or a clientId (exactly)."
    name: String
    enabled: Boolean
    deleted: Boolean
    type: [ServiceAccountType!]
    source: ServiceAccountSource
    createdAt: DateFilter
    lastLoginAt: DateFilter
    expiresAt: DateFilter
    lastRotatedAt: DateFilter
  }

  type IntegrationTypeConfiguration {
    type: String!
    iconUrl: String
  }

  type Integration {
    id: ID!
    name: String!
    typeConfiguration: IntegrationTypeConfiguration!
  }

  type Project {
    id: ID!
    name: String!
  }

  type ServiceAccount {
    id: ID!
    name: String!
    clientId: String!
    "Only a rotation's payload carries the secret; every other read returns null."
    clientSecret: String
    enabled: Boolean!
    scopes: [String!]!
    type: ServiceAccountType!
    description: String
    createdAt: DateTime!
    lastRotatedAt: DateTime
    expiresAt: DateTime
    lastLoginAt: DateTime
    integration: Integration
    assignedProjects: [Project!]
  }

  type PageInfo {
    hasNextPage: Boolean!
    endCursor: String
  }

  type ServiceAccountConnection {
    nodes: [ServiceAccount!]!
    pageInfo: PageInfo!
    totalCount: Int!
  }

  type RotateServiceAccountSecretPayload {
    serviceAccount: ServiceAccount!
  }

  input UpdateServiceAccountPatch {
    name: String
    description: String
    scopes: [String!]
    "null removes the expiry."
    expiresAt: DateTime
  }

  input UpdateServiceAccountInput {
    "The account's id or its clientId (rotate.py passes the clientId)."
    serviceAccountId: ID!
    patch: UpdateServiceAccountPatch!
  }

  type UpdateServiceAccountPayload {
    serviceAccount: ServiceAccount!
  }

  # Top-level fields are non-null so that a failed field nulls the whole of data, which is the envelope Wiz
  # answers with ({"errors": [...], "data": null}).
  type Query {
    serviceAccounts(first: Int, after: String, filterBy: ServiceAccountFilters, orderBy: ServiceAccountOrder): ServiceAccountConnection!
    "Accepts the id or the clientId."
    serviceAccount(id: ID!): ServiceAccount!
  }

  type Mutation {
    "ID is the account's id or its clientId (both public rotators pass the clientId)."
    rotateServiceAccountSecret(ID: String!): RotateServiceAccountSecretPayload!
    updateServiceAccount(input: UpdateServiceAccountInput!): UpdateServiceAccountPayload!
  }
`;

let built: GraphQLSchema | undefined;

export function wizSchema(): GraphQLSchema {
  built ??= buildSchema(WIZ_SCHEMA_SDL);
  return built;
}
