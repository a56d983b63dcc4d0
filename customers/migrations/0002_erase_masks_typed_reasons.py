from django.db import migrations, models

# The access log stays append-only with one exception: once a customer is erased, the typed
# reasons of the rows about them are masked (a reason may name the person). The trigger lets
# through exactly that: an UPDATE that sets reason_text to '(erased)' on a row whose customer
# is erased and leaves every other column as it was. Everything else is refused, as before.
ALLOW_MASKING_ON_ERASE = """
CREATE OR REPLACE FUNCTION customers_contextaccess_append_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE'
       AND NEW.reason_text = '(erased)'
       AND (NEW.id, NEW.customer_id, NEW.user_id, NEW.username, NEW.reason, NEW.call_id,
            NEW.accessed_at)
           IS NOT DISTINCT FROM
           (OLD.id, OLD.customer_id, OLD.user_id, OLD.username, OLD.reason, OLD.call_id,
            OLD.accessed_at)
       AND EXISTS (
           SELECT 1 FROM customers_customer
           WHERE id = OLD.customer_id AND erased_at IS NOT NULL
       )
    THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'customers_contextaccess is append-only';
END;
$$ LANGUAGE plpgsql;
"""
REFUSE_EVERY_CHANGE = """
CREATE OR REPLACE FUNCTION customers_contextaccess_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'customers_contextaccess is append-only';
END;
$$ LANGUAGE plpgsql;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("customers", "0001_initial"),
    ]

    operations = [
        migrations.AlterField(
            model_name="contextaccess",
            name="reason",
            field=models.CharField(
                choices=[
                    ("offer", "Offered call (screen-pop)"),
                    ("call", "Their call with this agent"),
                    ("lookup", "Lookup outside a call (reason typed)"),
                    ("export", "Data export"),
                    ("api", "API, by staff"),
                    ("admin", "Admin site"),
                    ("supervisor", "Supervising (dashboard, a call's routing story)"),
                ],
                max_length=16,
            ),
        ),
        migrations.RunSQL(ALLOW_MASKING_ON_ERASE, REFUSE_EVERY_CHANGE),
    ]
