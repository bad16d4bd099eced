//! Declarative partitioned tables (the `partitioned` catalog: `events` with 8 hash
//! partitions, `logs` with a sub-partitioned partition): the per-partition steps and their
//! locks, the version-specific foreign key route, and what the planner refuses.

use super::support::case;

#[test]
fn create_index_on_a_partitioned_table() {
    assert_plan!(case("partitioned", "partitioned_create_index.yaml"));
}

#[test]
fn create_index_on_a_sub_partitioned_table() {
    assert_plan!(case(
        "partitioned",
        "partitioned_create_index_sub_partitioned.yaml"
    ));
}

#[test]
fn create_unique_index_with_the_partition_key() {
    assert_plan!(case("partitioned", "partitioned_create_unique_index.yaml"));
}

#[test]
fn drop_a_partitioned_index() {
    assert_plan!(case("partitioned", "partitioned_drop_index.yaml"));
}

#[test]
fn add_column_with_up_backfills_partition_by_partition() {
    assert_plan!(case("partitioned", "partitioned_add_column_with_up.yaml"));
}

#[test]
fn foreign_key_through_the_partitions_before_postgresql_18() {
    assert_plan!(case(
        "partitioned",
        "partitioned_alter_column_references.yaml"
    ));
}

#[test]
fn foreign_key_not_valid_on_the_parent_on_postgresql_18() {
    assert_plan!(case("partitioned", "partitioned_alter_column_references.yaml").on_server(180004));
}

#[test]
fn unique_index_without_the_partition_key() {
    assert_plan!(
        case("partitioned", "error_partitioned_unique_without_key.yaml"),
        error
    );
}

#[test]
fn unique_index_without_a_sub_partition_key() {
    assert_plan!(
        case(
            "partitioned",
            "error_partitioned_unique_without_sub_key.yaml"
        ),
        error
    );
}

#[test]
fn changing_a_partition_key_column() {
    assert_plan!(
        case("partitioned", "error_partitioned_alter_key_column.yaml"),
        error
    );
}

#[test]
fn unique_constraint_on_a_partitioned_table() {
    assert_plan!(
        case("partitioned", "error_partitioned_unique_constraint.yaml"),
        error
    );
}

#[test]
fn dropping_a_partitions_index() {
    assert_plan!(
        case("partitioned", "error_partitioned_drop_partition_index.yaml"),
        error
    );
}
