/** Cluster metadata API (the seed system's NovaCron integration) on the sync engine. */
export { NovaCronIntegration, type NovaCronIntegrationOptions, type ClusterStats, type IntegrationStats } from './integration.js';
export { ClusterMetadata, CLUSTER_CRDT_NAMES, type ClusterMetadataOptions, type ClusterOverview, type ClusterState, type ClusterSummary } from './metadata.js';
export { validateVMState, validateNodeStatus, type VMState, type NodeStatus, type ClusterSnapshot, type TimeInput, type VMStateInput, type NodeStatusInput, type WriteOptions } from './types.js';
