//! Azure Resource Manager client for Microsoft.MachineLearningServices:
//! credentials, retries, long-running operations, typed resources.
