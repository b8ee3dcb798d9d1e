// The viewer's IANA time zone, for the Schedules page's "next firing in your zone".
window.pipelineDashboard = {
    timeZone: () => Intl.DateTimeFormat().resolvedOptions().timeZone,
};
