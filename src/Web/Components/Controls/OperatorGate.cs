using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Components.Authorization;
using Pipeline.Web.Access;

namespace Pipeline.Web.Components.Controls;

/// <summary>
/// The server-side check behind every control that changes runs or schedules: hiding a button in an
/// <c>AuthorizeView</c> is not enough, since a circuit's events can be sent without it. Asks the
/// <see cref="AccessPolicies.OperateRuns"/> policy for the circuit's user each time.
/// </summary>
public sealed class OperatorGate(AuthenticationStateProvider authentication, IAuthorizationService authorization)
{
    public const string Refusal = "You may view runs but not operate them (launch, cancel, retry, rerun, schedules).";

    public async Task<bool> AllowedAsync()
    {
        var state = await authentication.GetAuthenticationStateAsync();
        return (await authorization.AuthorizeAsync(state.User, AccessPolicies.OperateRuns)).Succeeded;
    }

    /// <summary>Runs <paramref name="action"/> when the user may operate runs; otherwise throws <see cref="UnauthorizedAccessException"/>.</summary>
    public async Task<T> RunAsync<T>(Func<Task<T>> action)
    {
        if (!await AllowedAsync()) throw new UnauthorizedAccessException(Refusal);
        return await action();
    }

    public Task RunAsync(Func<Task> action) => RunAsync(async () =>
    {
        await action();
        return true;
    });
}
