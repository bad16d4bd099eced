//! One snapshot (at least) per operation of ratchet-spec's `Operation`, on the `shop`
//! catalog unless the operation needs another shape.

use super::support::case;

#[test]
fn add_column_nullable() {
    assert_plan!(case("shop", "add_column_nullable.yaml"));
}

#[test]
fn add_column_default_check_unique() {
    assert_plan!(case("shop", "add_column_default_check_unique.yaml"));
}

#[test]
fn add_column_volatile_default() {
    assert_plan!(case("shop", "add_column_volatile_default.yaml"));
}

#[test]
fn add_column_with_up() {
    assert_plan!(case("shop", "add_column_with_up.yaml"));
}

#[test]
fn add_column_references() {
    assert_plan!(case("shop", "add_column_references.yaml"));
}

#[test]
fn alter_column_type() {
    assert_plan!(case("shop", "alter_column_type.yaml"));
}

#[test]
fn alter_column_rename() {
    assert_plan!(case("shop", "alter_column_rename.yaml"));
}

#[test]
fn alter_column_set_not_null() {
    assert_plan!(case("shop", "alter_column_set_not_null.yaml"));
}

#[test]
fn alter_column_set_not_null_on_postgresql_18() {
    assert_plan!(case("shop", "alter_column_set_not_null.yaml").on_server(180001));
}

#[test]
fn add_column_with_up_on_postgresql_18() {
    assert_plan!(case("shop", "add_column_with_up.yaml").on_server(180001));
}

#[test]
fn alter_column_type_of_a_not_null_column_on_postgresql_18() {
    assert_plan!(case("shop", "alter_column_type.yaml").on_server(180001));
}

#[test]
fn alter_column_drop_not_null() {
    assert_plan!(case("shop", "alter_column_drop_not_null.yaml"));
}

#[test]
fn alter_column_set_default() {
    assert_plan!(case("shop", "alter_column_set_default.yaml"));
}

#[test]
fn alter_column_drop_default() {
    assert_plan!(case("shop", "alter_column_drop_default.yaml"));
}

#[test]
fn alter_column_set_unique() {
    assert_plan!(case("shop", "alter_column_set_unique.yaml"));
}

#[test]
fn alter_column_check() {
    assert_plan!(case("shop", "alter_column_check.yaml"));
}

#[test]
fn alter_column_references() {
    assert_plan!(case("shop", "alter_column_references.yaml"));
}

#[test]
fn alter_column_comment() {
    assert_plan!(case("shop", "alter_column_comment.yaml"));
}

#[test]
fn alter_column_multiple() {
    assert_plan!(case("shop", "alter_column_multiple.yaml"));
}

#[test]
fn drop_column() {
    assert_plan!(case("shop", "drop_column.yaml"));
}

#[test]
fn drop_column_with_down() {
    assert_plan!(case("shop", "drop_column_with_down.yaml"));
}

#[test]
fn rename_column() {
    assert_plan!(case("shop", "rename_column.yaml"));
}

#[test]
fn create_table() {
    assert_plan!(case("shop", "create_table.yaml"));
}

#[test]
fn create_table_composite_pk() {
    assert_plan!(case("shop", "create_table_composite_pk.yaml"));
}

#[test]
fn drop_table() {
    assert_plan!(case("shop", "drop_table.yaml"));
}

#[test]
fn rename_table() {
    assert_plan!(case("shop", "rename_table.yaml"));
}

#[test]
fn create_index() {
    assert_plan!(case("shop", "create_index.yaml"));
}

#[test]
fn create_index_unique() {
    assert_plan!(case("shop", "create_index_unique.yaml"));
}

#[test]
fn drop_index() {
    assert_plan!(case("shop", "drop_index.yaml"));
}

#[test]
fn create_constraint_unique() {
    assert_plan!(case("shop", "create_constraint_unique.yaml"));
}

#[test]
fn create_constraint_check() {
    assert_plan!(case("shop", "create_constraint_check.yaml"));
}

#[test]
fn create_constraint_foreign_key() {
    assert_plan!(case("shop", "create_constraint_foreign_key.yaml"));
}

/// A JSON migration file: positions come from ratchet-spec's JSON locator.
#[test]
fn create_constraint_foreign_key_composite() {
    assert_plan!(case(
        "composite_key",
        "create_constraint_foreign_key_composite.json"
    ));
}

#[test]
fn drop_constraint() {
    assert_plan!(case("shop", "drop_constraint.yaml"));
}

#[test]
fn drop_multicolumn_constraint() {
    assert_plan!(case("composite_key", "drop_multicolumn_constraint.yaml"));
}

#[test]
fn rename_constraint() {
    assert_plan!(case("shop", "rename_constraint.yaml"));
}

#[test]
fn set_replica_identity_full() {
    assert_plan!(case("shop", "set_replica_identity_full.yaml"));
}

#[test]
fn set_replica_identity_index() {
    assert_plan!(case("shop", "set_replica_identity_index.yaml"));
}

#[test]
fn sql() {
    assert_plan!(case("shop", "sql.yaml"));
}

#[test]
fn sql_on_complete() {
    assert_plan!(case("shop", "sql_on_complete.yaml"));
}
