-- Each banli service has a database of its own (the suggestions service's, banli_suggestions,
-- is POSTGRES_DB). Run once, on the first start of an empty PostgreSQL volume.
CREATE DATABASE banli_coordination OWNER banli;
CREATE DATABASE banli_followup OWNER banli;
