using Bunit;
using Pipeline.Jobs.Runs;
using Pipeline.Jobs.RunStore;
using Pipeline.Web.Components.Controls;

namespace Pipeline.Web.Tests.Components;

public class RunTableTests : DashboardContext
{
    private static readonly DateTime T0 = new(2026, 12, 1, 8, 0, 0, DateTimeKind.Utc);

    private static RunRow Row(long id, RunStatus status = RunStatus.Succeeded) => new(id, $"run-{id}", "smoke", "manual", null, status, 6, 3, 0.5,
        T0.AddMinutes(id), T0.AddMinutes(id), T0.AddMinutes(id + 2), TimeSpan.FromMinutes(2), 0.25, new RunHeadline("rgc", "top1", "top-1 82.0 %", 0.82));

    /// <summary>A store of 60 runs served a page at a time, as RunQueries.PageAsync does, recording what was asked.</summary>
    private static Func<RunListQuery, CancellationToken, Task<RunPage>> Store(List<RunListQuery> asked) => (q, _) =>
    {
        asked.Add(q);
        var rows = Enumerable.Range(1, 60).Select(i => Row(61 - i)).Where(r => q.Status is null || r.Status == q.Status).ToList();
        return Task.FromResult(new RunPage([.. rows.Skip((q.Page - 1) * q.PageSize).Take(q.PageSize)], rows.Count, q.Page, q.PageSize));
    };

    [Fact]
    public void Shows_the_rows_of_the_page_with_a_link_status_and_headline_each()
    {
        SignInAsViewer();
        RenderPopoverHost();
        var asked = new List<RunListQuery>();

        var table = Render<RunTable>(p => p.Add(t => t.Load, Store(asked)).Add(t => t.PageSize, 25));

        table.WaitForAssertion(() => Assert.Equal(25, table.FindAll("[data-testid=run-row]").Count));
        var first = table.Find("[data-testid=run-row]");
        Assert.Equal("/runs/60", first.GetAttribute("href"));
        Assert.Contains("run-60", first.TextContent);
        Assert.Contains("top-1 82.0 %", table.Markup);
        Assert.Equal("succeeded", table.Find("[data-testid=status-badge]").GetAttribute("data-status"));
        Assert.Equal(new RunListQuery(1, 25, Sort: RunSort.Newest), asked[^1]);
        Assert.Contains("1-25 of 60", table.Find("[data-testid=runs-pager]").TextContent);
    }

    [Fact]
    public void The_next_page_asks_the_server_for_page_two()
    {
        SignInAsViewer();
        RenderPopoverHost();
        var asked = new List<RunListQuery>();
        var table = Render<RunTable>(p => p.Add(t => t.Load, Store(asked)).Add(t => t.PageSize, 25));
        table.WaitForAssertion(() => Assert.Equal(25, table.FindAll("[data-testid=run-row]").Count));

        table.Find("[data-testid=runs-pager] button[aria-label='Next page']").Click();

        table.WaitForAssertion(() => Assert.Equal("/runs/35", table.Find("[data-testid=run-row]").GetAttribute("href")));
        Assert.Equal(2, asked[^1].Page);
        Assert.Equal(25, asked[^1].PageSize);
    }

    [Fact]
    public void A_read_that_fails_shows_its_message_instead_of_rows()
    {
        SignInAsViewer();
        RenderPopoverHost();
        var table = Render<RunTable>(p => p.Add(t => t.Load, (_, _) => throw new InvalidOperationException("store unreachable")));

        table.WaitForAssertion(() => Assert.Contains("store unreachable", table.Find("[data-testid=runs-error]").TextContent));
        Assert.Empty(table.FindAll("[data-testid=run-row]"));
    }

    [Theory]
    [InlineData("created", MudBlazor.SortDirection.Descending, RunSort.Newest)]
    [InlineData("created", MudBlazor.SortDirection.Ascending, RunSort.Oldest)]
    [InlineData("name", MudBlazor.SortDirection.Ascending, RunSort.Name)]
    [InlineData("duration", MudBlazor.SortDirection.Descending, RunSort.Duration)]
    [InlineData(null, MudBlazor.SortDirection.None, RunSort.Newest)]
    public void Column_sorting_maps_to_the_server_sort(string? label, MudBlazor.SortDirection direction, RunSort expected) =>
        Assert.Equal(expected, RunTable.SortOf(label, direction));
}
