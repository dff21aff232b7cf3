"""Names the sandbox's AWS and the stack that configures the engine for it must agree on."""

# moto's default account: the organization's management account in the sandbox.
MANAGEMENT_ACCOUNT = "123456789012"
# The role AWS Budgets assumes to apply a lease's freeze SCP (VEND_LEASES__BUDGET_ACTION_ROLE_ARN).
BUDGET_ACTION_ROLE = "vend-lease-budget-actions"
BUDGET_ACTION_ROLE_ARN = f"arn:aws:iam::{MANAGEMENT_ACCOUNT}:role/{BUDGET_ACTION_ROLE}"
