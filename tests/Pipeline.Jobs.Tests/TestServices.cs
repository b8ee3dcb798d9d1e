namespace Pipeline.Jobs.Tests;

/// <summary>
/// Connection strings of the real services the tests run against. ./scripts/test.sh starts them (PostgreSQL 15 and
/// Azurite on free loopback ports) and exports these variables; ./scripts/dev-services.sh does the same for a
/// development shell. A test that needs a service and finds no variable fails: a skipped test would hide it.
/// </summary>
public static class TestServices
{
    /// <summary>Npgsql connection string of a throw-away PostgreSQL server (<c>PIPELINE_TEST_POSTGRES</c>).</summary>
    public static string Postgres => Require("PIPELINE_TEST_POSTGRES", "PostgreSQL");

    /// <summary>Azure Storage connection string of a throw-away Azurite blob service (<c>PIPELINE_TEST_BLOBS</c>).</summary>
    public static string Blobs => Require("PIPELINE_TEST_BLOBS", "Azurite (blob service)");

    private static string Require(string variable, string service) =>
        Environment.GetEnvironmentVariable(variable) is { Length: > 0 } value
            ? value
            : throw new InvalidOperationException(
                $"{variable} is not set, so there is no {service} to test against. Run the tests with ./scripts/test.sh " +
                "(it starts the services and sets the variables; extra arguments go to dotnet test), or start them with " +
                "./scripts/dev-services.sh and export what it prints.");
}
