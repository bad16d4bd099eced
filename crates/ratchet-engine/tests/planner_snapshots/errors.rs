//! What the planner refuses, as the message the user reads (location, message, hint).

use super::support::case;

#[test]
fn unknown_table_did_you_mean() {
    assert_plan!(case("shop", "error_unknown_table.yaml"), error);
}

#[test]
fn unknown_column_did_you_mean() {
    assert_plan!(case("shop", "error_unknown_column.yaml"), error);
}

#[test]
fn unknown_column_lists_the_columns() {
    assert_plan!(
        case("shop", "error_unknown_column_no_close_name.yaml"),
        error
    );
}

#[test]
fn unknown_table_in_empty_schema() {
    assert_plan!(
        case("empty", "error_unknown_table_empty_schema.yaml"),
        error
    );
}

#[test]
fn column_dropped_earlier_in_the_file() {
    assert_plan!(case("shop", "error_column_dropped_earlier.yaml"), error);
}

#[test]
fn renamed_column_by_its_old_name() {
    assert_plan!(case("shop", "error_renamed_column_old_name.yaml"), error);
}

#[test]
fn table_exists() {
    assert_plan!(case("shop", "error_table_exists.yaml"), error);
}

#[test]
fn index_name_taken() {
    assert_plan!(case("shop", "error_index_name_taken.yaml"), error);
}

#[test]
fn drop_primary_key() {
    assert_plan!(case("shop", "error_drop_primary_key.yaml"), error);
}

#[test]
fn drop_constraint_spanning_columns() {
    assert_plan!(
        case(
            "composite_key",
            "error_drop_constraint_spanning_columns.yaml"
        ),
        error
    );
}

#[test]
fn unknown_constraint_did_you_mean() {
    assert_plan!(case("shop", "error_unknown_constraint.yaml"), error);
}

/// The location is the fragment's own line and column, not the operation's.
#[test]
fn invalid_up_expression() {
    assert_plan!(case("shop", "error_invalid_up_expression.yaml"), error);
}

#[test]
fn exclusion_on_existing_table() {
    assert_plan!(
        case("shop", "error_exclusion_on_existing_table.yaml"),
        error
    );
}

#[test]
fn up_refers_to_unknown_column() {
    assert_plan!(
        case("shop", "error_up_refers_to_unknown_column.yaml"),
        error
    );
}

#[test]
fn down_refers_to_old_name() {
    assert_plan!(case("shop", "down_refers_to_old_name.yaml"), error);
}

/// `public_<file name>` is over PostgreSQL's 63 bytes, though the file name alone is not.
#[test]
fn version_schema_name_too_long() {
    assert_plan!(
        case(
            "shop",
            "error_version_schema_name_too_long_for_postgresql_limits_of_63.yaml"
        ),
        error
    );
}

/// After a rename earlier in the file, `up` names the columns as that operation left
/// them, not as the running application does; the message calls `amount_cents` "not a
/// column of the old version" and lists the renamed `total_cents` among the old ones.
#[test]
fn up_uses_name_before_rename() {
    assert_plan!(case("shop", "error_up_uses_name_before_rename.yaml"), error);
}
